"""``volunteer-bot``: serve, chat, classify, db, admin."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.commands.calendar import calendar_command, observance_app
from bot.commands.outbox import outbox_app
from bot.commands.telegram import telegram_app
from bot.commands.wechat import wechat_app
from bot.config import Settings

app = typer.Typer(help="志愿助手 — volunteer assistant", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
admin_app = typer.Typer(help="Roles: admins and coordinators.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations (center → station → team).", no_args_is_help=True)
ledger_app = typer.Typer(help="The hours ledger (台账).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(org_app, name="org")
app.add_typer(ledger_app, name="ledger")
app.add_typer(telegram_app, name="telegram")
app.add_typer(wechat_app, name="wechat")
app.command("calendar")(calendar_command)
app.add_typer(observance_app, name="observance")
app.add_typer(outbox_app, name="outbox")


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # a readable line instead of a pydantic traceback
        typer.echo(f"配置错误 / configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT setting).")] = None,
) -> None:
    """Run the web app (GET /healthz; channel endpoints) until interrupted."""
    from bot.serve import run_server

    settings = _settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run_server(settings, host=host or settings.host, port=port or settings.port))
    except KeyboardInterrupt:
        pass


@app.command()
def chat(
    user: Annotated[str, typer.Option(help="Who you are on the console channel.")] = "console",
    lang: Annotated[str | None, typer.Option(help="zh-Hans, zh-Hant or en (default: guessed).")] = None,
) -> None:
    """Talk to the assistant in the terminal (interactive, or lines from a pipe)."""
    from bot.channels.console import ConsoleChannel
    from bot.runtime import Runtime

    settings = _settings()
    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        runtime = await Runtime.start(settings)
        try:
            await ConsoleChannel(runtime.core, user=user, language=lang).run(sys.stdin)
        finally:
            await runtime.close()

    asyncio.run(main())


@app.command()
def classify(
    text: Annotated[str | None, typer.Argument(help="A message to classify.")] = None,
    jsonl: Annotated[Path | None, typer.Option("--jsonl", help="File of lines {\"text\": ...}.")] = None,
) -> None:
    """Print {"text", "intent", "category", "language"} as JSON, one object per input."""
    from handlers.nlu import classify as classify_text

    if (text is None) == (jsonl is None):
        _fail("give either TEXT or --jsonl FILE")
    if text is not None:
        texts = [text]
    else:
        assert jsonl is not None
        texts = []
        for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                texts.append(str(item["text"]))
            except (ValueError, KeyError, TypeError):
                _fail(f"{jsonl}:{number}: expected a JSON object with a \"text\" field")
    for item in texts:
        result = classify_text(item)
        typer.echo(json.dumps({"text": item, "intent": result.intent, "category": result.category,
                               "language": result.language}, ensure_ascii=False))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration (SQLite or PostgreSQL, from DATABASE_URL)."""
    from bot.runtime import upgrade_schema
    from models.db import create_engine

    settings = _settings()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()

    asyncio.run(main())
    typer.echo("schema is up to date")


@admin_app.command("grant")
def admin_grant(
    role: Annotated[str, typer.Argument(help="admin or coordinator")],
    channel: Annotated[str, typer.Option(help="console, wechat or telegram")],
    user: Annotated[str, typer.Option(help="The user's id on that channel.")],
    org: Annotated[str | None, typer.Option(help="Organization name (coordinators); created if new.")] = None,
) -> None:
    """Grant a role, e.g. admin grant coordinator --channel telegram --user 123 --org "XX社区"."""
    asyncio.run(_change_role(role, channel, user, org, grant=True))


@admin_app.command("revoke")
def admin_revoke(
    role: Annotated[str, typer.Argument(help="admin or coordinator")],
    channel: Annotated[str, typer.Option()],
    user: Annotated[str, typer.Option()],
    org: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Take a role away."""
    asyncio.run(_change_role(role, channel, user, org, grant=False))


async def _change_role(role: str, channel: str, user: str, org_name: str | None, *, grant: bool) -> None:
    from sqlmodel import select

    from bot.runtime import Runtime
    from models import Organization, utcnow
    from services.people import get_or_create_identity, get_or_create_organization, grant_role, revoke_role

    if role not in ("admin", "coordinator"):
        _fail("role must be admin or coordinator")
    if role == "coordinator" and not org_name:
        _fail("a coordinator needs --org")
    runtime = await Runtime.start(_settings())
    try:
        async with runtime.sessions() as session:
            _, person = await get_or_create_identity(session, channel=channel, external_id=user, now=utcnow())
            org_id = None
            if org_name:
                if grant:
                    org_id = (await get_or_create_organization(session, name=org_name)).id
                else:
                    found = (await session.exec(select(Organization).where(Organization.name == org_name))).first()
                    if found is None:
                        _fail(f"no organization named {org_name!r}")
                    assert found is not None
                    org_id = found.id
            if grant:
                await grant_role(session, person_id=person.id, role=role, organization_id=org_id)
            elif not await revoke_role(session, person_id=person.id, role=role, organization_id=org_id):
                _fail("that role was not granted")
            await session.commit()
    finally:
        await runtime.close()
    where = f" @ {org_name}" if org_name else ""
    typer.echo(f"{'granted' if grant else 'revoked'} {role}{where} for {channel}:{user}")


@org_app.command("add")
def org_add(
    name: Annotated[str, typer.Argument()],
    kind: Annotated[str, typer.Option(help="center, station or team")] = "station",
    parent: Annotated[str | None, typer.Option(help="Parent organization name.")] = None,
) -> None:
    """Add an organization."""
    from sqlmodel import select

    from bot.runtime import Runtime
    from models import Organization
    from services.people import get_or_create_organization

    if kind not in ("center", "station", "team"):
        _fail("kind must be center, station or team")

    async def main() -> None:
        runtime = await Runtime.start(_settings())
        try:
            async with runtime.sessions() as session:
                parent_id = None
                if parent:
                    found = (await session.exec(select(Organization).where(Organization.name == parent))).first()
                    if found is None:
                        _fail(f"no organization named {parent!r}")
                    assert found is not None
                    parent_id = found.id
                org = await get_or_create_organization(session, name=name, kind=kind, parent_id=parent_id)
                await session.commit()
                typer.echo(f"organization #{org.id} {org.name} ({org.kind})")
        finally:
            await runtime.close()

    asyncio.run(main())


@ledger_app.command("export")
def ledger_export(
    org: Annotated[list[str], typer.Option(help="Organization name (repeat for several).")],
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 1 January).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default: today).")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV file to write (default: standard output).")] = None,
) -> None:
    """Export approved hours of organizations' activities as CSV (ID numbers and phones masked)."""
    from datetime import date

    from sqlmodel import col, select

    from bot.runtime import Runtime
    from models import Organization
    from services.ledger import ledger_csv, ledger_rows

    try:
        first = date.fromisoformat(start) if start else date(date.today().year, 1, 1)
        last = date.fromisoformat(end) if end else date.today()
    except ValueError:
        _fail("dates look like 2026-03-05")
        return

    async def main() -> bytes:
        runtime = await Runtime.start(_settings())
        try:
            async with runtime.sessions() as session:
                found = list(await session.exec(select(Organization).where(col(Organization.name).in_(org))))
                missing = set(org) - {o.name for o in found}
                if missing:
                    _fail(f"no organization named {', '.join(sorted(missing))}")
                rows = await ledger_rows(session, organization_ids=[o.id for o in found if o.id], start=first,
                                         end=last)
                return ledger_csv(rows)
        finally:
            await runtime.close()

    data = asyncio.run(main())
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
        typer.echo(f"wrote {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
