"""/admin/activities/<id>/poster: a printable check-in poster — the activity's title, time and place, and
QR codes that check a volunteer in and out: WeChat's parametric codes (made through the API, as
``volunteer-bot wechat qrcode`` makes them) and Telegram's deep links (as ``telegram link --qr``). A
channel that is not configured is left out, and the poster says so. The codes are drawn here (no image
is fetched from elsewhere)."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from aiohttp import web

from bot.channels.wechat.api import WeChatApiError, api_client
from bot.commands.telegram import deep_link
from bot.commands.wechat import QR_VALID_AFTER_END
from bot.qr import qr_png
from bot.web.core import Ctx, page
from bot.web.pages_activities import own_activity
from models import Activity

log = logging.getLogger(__name__)
ACTIONS = ("checkin", "checkout")


@dataclass(frozen=True, slots=True)
class PosterCode:
    channel: str  # wechat / telegram
    action: str  # checkin / checkout
    image: str  # a data: URI of the PNG


def _data_uri(text: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(text)).decode("ascii")


async def _wechat_codes(ctx: Ctx, activity: Activity) -> list[PosterCode] | None:
    """None when WeChat's API is not configured or refuses (then the poster says so)."""
    client = api_client(ctx.runtime.settings, ctx.runtime.sessions)
    if client is None:
        return None
    seconds = int((activity.end_at + QR_VALID_AFTER_END - ctx.now).total_seconds())
    try:
        return [PosterCode("wechat", action, _data_uri((await client.create_temporary_qrcode(
            f"{action}_{activity.checkin_code}", seconds)).url)) for action in ACTIONS]
    except WeChatApiError as error:
        log.warning("poster: WeChat refused the QR code of activity %s: %s", activity.id, error)
        return None
    finally:
        await client.close()


@page
async def poster(ctx: Ctx) -> web.StreamResponse:
    activity = await own_activity(ctx)
    usable = activity.status == "open" and bool(activity.checkin_code) and activity.end_at + QR_VALID_AFTER_END > ctx.now
    wechat = await _wechat_codes(ctx, activity) if usable else None
    username = ctx.runtime.settings.telegram_bot_username
    telegram = [PosterCode("telegram", action, _data_uri(deep_link(username, f"{action}_{activity.checkin_code}")))
                for action in ACTIONS] if usable and username else None
    return ctx.render("poster.html", activity=activity, usable=usable, wechat=wechat, telegram=telegram)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/activities/{id}/poster", poster)
