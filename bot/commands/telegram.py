"""``volunteer-bot telegram …``: Telegram helpers for coordinators.

``telegram link --activity 5 --action checkin [--qr checkin.png]`` prints the t.me deep link that checks a
volunteer in (or out) when opened — the same core check-in as WeChat's QR scenes — and writes it as a
QR code PNG when asked (print it at the venue).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bot.commands.common import load_settings

telegram_app = typer.Typer(help="Telegram: deep links and QR codes.", no_args_is_help=True)


class LinkAction(StrEnum):
    checkin = "checkin"
    checkout = "checkout"
    view = "view"


def deep_link(username: str, payload: str) -> str:
    """Telegram allows A-Z a-z 0-9 _ - in a start payload, at most 64 characters."""
    return f"https://t.me/{username.lstrip('@')}?start={payload}"


def write_qr_png(text: str, path: Path) -> None:
    from bot.qr import qr_png

    path.write_bytes(qr_png(text))


async def _payload(activity_id: int, action: LinkAction) -> str:
    from bot.runtime import Runtime
    from models import Activity

    runtime = await Runtime.start(load_settings())
    try:
        async with runtime.sessions() as session:
            activity = await session.get(Activity, activity_id)
    finally:
        await runtime.close()
    if activity is None:
        typer.echo(f"no activity #{activity_id}", err=True)
        raise typer.Exit(1)
    if action is LinkAction.view:
        return f"act_{activity_id}"
    if not activity.checkin_code:
        typer.echo(f"activity #{activity_id} has no check-in code", err=True)
        raise typer.Exit(1)
    return f"{action.value}_{activity.checkin_code}"


@telegram_app.command("link")
def link(
    activity: Annotated[int, typer.Option("--activity", help="Activity id.")],
    action: Annotated[LinkAction, typer.Option("--action", help="checkin, checkout (or view: open the activity).")],
    qr: Annotated[Path | None, typer.Option("--qr", help="Also write the link as a QR code PNG here.")] = None,
) -> None:
    """Print the t.me deep link for an activity's check-in / check-out."""

    username = load_settings().telegram_bot_username
    if not username:
        typer.echo("set TELEGRAM_BOT_USERNAME (the bot's @username) first", err=True)
        raise typer.Exit(2)
    url = deep_link(username, asyncio.run(_payload(activity, action)))
    typer.echo(url)
    if qr is not None:
        write_qr_png(url, qr)
        typer.echo(f"QR code written to {qr}")
