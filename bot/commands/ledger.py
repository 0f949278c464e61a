"""``volunteer-bot ledger export`` / ``ledger roster``: the hours ledger (台账) or an activity's roster as an
Excel workbook (.xlsx) or CSV."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from bot.commands.common import fail, load_settings
from bot.texts import cli_text
from common.i18n import _

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from bot.config import Settings
    from services.exports import Table

LEDGER_NAME = cli_text(_("台账"))
ledger_app = typer.Typer(help=f"The hours ledger ({LEDGER_NAME}).", no_args_is_help=True)


def export_period(start: str | None, end: str | None, *, now: datetime, timezone: str) -> tuple[date, date]:
    """The days asked for; without them, 1 January to today, both in the deployment's TIMEZONE (not UTC).

    Raises ValueError for a date not written YYYY-MM-DD."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    first = date.fromisoformat(start) if start else date(today.year, 1, 1)
    return first, date.fromisoformat(end) if end else today


def export_format(fmt: str | None, out: Path | None) -> str:
    """--format, else the --out file's suffix, else csv (what standard output got before .xlsx existed)."""
    chosen = (fmt or (out.suffix.lstrip(".") if out is not None else "") or "csv").lower()
    if chosen not in ("xlsx", "csv"):
        fail("--format is xlsx or csv")
    return chosen


FormatOption = Annotated[str | None, typer.Option("--format", help="xlsx or csv (default: the --out suffix, else csv).")]
OutOption = Annotated[Path | None, typer.Option(help="File to write (default: standard output).")]
LangOption = Annotated[str, typer.Option("--lang", help="Language of the headers and sources: zh-Hans, zh-Hant or en.")]


def _export(build: Callable[[AsyncSession, Settings], Awaitable[Table]], *, settings: Settings, fmt: str, lang: str,
            out: Path | None) -> None:
    """Open the database, build the table, write it as ``fmt`` to ``out`` (or standard output)."""
    from bot.runtime import Runtime
    from common.lang import normalize_language  # zhconv: only for the commands that export
    from services.exports import write_table

    language = normalize_language(lang)
    if language is None:
        fail("--lang is zh-Hans, zh-Hant or en")

    async def main() -> bytes:
        runtime = await Runtime.start(settings)
        try:
            async with runtime.sessions() as session:
                return write_table(await build(session, settings), fmt, lang=language)
        finally:
            await runtime.close()

    data = asyncio.run(main())
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
        typer.echo(f"wrote {out}")


@ledger_app.command("export")
def ledger_export(
    org: Annotated[list[str], typer.Option(help="Organization name (repeat for several).")],
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 1 January).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default: today in TIMEZONE).")] = None,
    fmt: FormatOption = None,
    out: OutOption = None,
    lang: LangOption = "zh-Hans",
) -> None:
    """Export approved hours of organizations as .xlsx or CSV (ID numbers and phones masked)."""
    from sqlmodel import col, select

    from models import Organization
    from services.ledger import ledger_rows, ledger_table

    chosen = export_format(fmt, out)
    settings = load_settings()
    try:
        first, last = export_period(start, end, now=datetime.now(UTC), timezone=settings.timezone)
    except ValueError:
        fail("dates look like 2026-03-05")

    async def build(session: AsyncSession, _settings: Settings) -> Table:
        found = list(await session.exec(select(Organization).where(col(Organization.name).in_(org))))
        missing = set(org) - {o.name for o in found}
        if missing:
            fail(f"no organization named {', '.join(sorted(missing))}")
        rows = await ledger_rows(session, organization_ids=[o.id for o in found if o.id], start=first, end=last,
                                tz=ZoneInfo(settings.timezone))
        return ledger_table(rows)

    _export(build, settings=settings, fmt=chosen, lang=lang, out=out)


@ledger_app.command("roster")
def roster_export(
    activity: Annotated[int, typer.Option(help="Activity number (as the activity list shows it).")],
    fmt: FormatOption = None,
    out: OutOption = None,
    lang: LangOption = "zh-Hans",
) -> None:
    """Export an activity's roster (sign-ups, check-in/out, hours) as .xlsx or CSV (phones masked)."""
    from zoneinfo import ZoneInfo

    from models import Activity
    from services.roster_export import roster_rows, roster_table

    chosen = export_format(fmt, out)

    async def build(session: AsyncSession, settings: Settings) -> Table:
        found = await session.get(Activity, activity)
        if found is None:
            fail(f"no activity {activity}")
        rows = await roster_rows(session, activity_id=activity, tz=ZoneInfo(settings.timezone))
        return roster_table(found, rows)

    _export(build, settings=load_settings(), fmt=chosen, lang=lang, out=out)
