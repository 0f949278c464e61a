"""``volunteer-bot wechat …``: push the custom menu, make check-in QR codes.

``wechat menu`` sends ``bot/data/wechat_menu.json`` (or ``--file``) to WeChat; its CLICK keys are core
command values. WeChat allows three top-level buttons, so 我要报名 / 活动 / 我的时长 sit under 志愿服务
beside 我要求助 and 帮助.

``wechat qrcode --activity 5 --action checkin`` makes a temporary parametric QR code whose scene is
``checkin_<code>``: scanning it (subscribed or not) checks the volunteer in through the core.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.commands.common import fail, load_settings

wechat_app = typer.Typer(help="WeChat official account: custom menu and check-in QR codes.", no_args_is_help=True)
MENU_FILE = Path(__file__).resolve().parent.parent / "data" / "wechat_menu.json"
# the core accepts check-ins until 6 h after the end; the code lives a little longer than that
QR_VALID_AFTER_END = timedelta(hours=7)


class QrAction(StrEnum):
    checkin = "checkin"
    checkout = "checkout"


async def _with_client(work: Any) -> Any:
    """Run ``work(client, runtime)`` with a WeChat API client sharing the deployment's token store."""
    from bot.channels.wechat.api import api_client
    from bot.runtime import Runtime

    settings = load_settings()
    if not settings.wechat_api_configured:
        fail("WECHAT_APP_ID and WECHAT_APP_SECRET must be set")
    runtime = await Runtime.start(settings)
    client = api_client(settings, runtime.sessions)
    assert client is not None
    try:
        return await work(client, runtime)
    finally:
        await client.close()
        await runtime.close()


@wechat_app.command("menu")
def menu(
    file: Annotated[Path, typer.Option("--file", help="Menu JSON (WeChat menu/create format).")] = MENU_FILE,
) -> None:
    """Push the custom menu (我要报名 / 活动 / 我的时长 / 我要求助 / 帮助)."""
    from bot.channels.wechat.api import WeChatApiError

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read {file}: {exc}")

    async def work(client: Any, _runtime: Any) -> None:
        await client.create_menu(data)

    try:
        asyncio.run(_with_client(work))
    except WeChatApiError as exc:
        fail(f"WeChat refused the menu: {exc}")
    typer.echo(f"menu updated from {file.name}")


@wechat_app.command("qrcode")
def qrcode(
    activity: Annotated[int, typer.Option("--activity", help="Activity id.")],
    action: Annotated[QrAction, typer.Option("--action", help="checkin or checkout.")],
) -> None:
    """Make a temporary QR code that checks volunteers in or out of an activity; prints its URL."""
    from bot.channels.wechat.api import WeChatApiError
    from models import Activity, utcnow

    async def work(client: Any, runtime: Any) -> Any:
        async with runtime.sessions() as session:
            found = await session.get(Activity, activity)
        if found is None:
            fail(f"no activity #{activity}")
        if not found.checkin_code:
            fail(f"activity #{activity} has no check-in code")
        seconds = (found.end_at + QR_VALID_AFTER_END - utcnow()).total_seconds()
        if seconds <= 0:
            fail(f"activity #{activity} is over")
        return await client.create_temporary_qrcode(f"{action.value}_{found.checkin_code}", int(seconds))

    try:
        code = asyncio.run(_with_client(work))
    except WeChatApiError as exc:
        fail(f"WeChat refused the QR code: {exc}")
    typer.echo(code.image_url)
    typer.echo(f"scene: {action.value} · valid for {timedelta(seconds=code.expire_seconds)} · content: {code.url}")
