"""``volunteer-bot ledger export``: the hours ledger (台账) as CSV."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.commands.common import fail, load_settings
from bot.texts import cli_text
from common.i18n import _

LEDGER_NAME = cli_text(_("台账"))
ledger_app = typer.Typer(help=f"The hours ledger ({LEDGER_NAME}).", no_args_is_help=True)


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
        fail("dates look like 2026-03-05")

    async def main() -> bytes:
        runtime = await Runtime.start(load_settings())
        try:
            async with runtime.sessions() as session:
                found = list(await session.exec(select(Organization).where(col(Organization.name).in_(org))))
                missing = set(org) - {o.name for o in found}
                if missing:
                    fail(f"no organization named {', '.join(sorted(missing))}")
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
