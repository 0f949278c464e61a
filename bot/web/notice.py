"""/n/<token>: the whole of one notice on a phone-sized page (the link a WeChat template message carries)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from bot.web.core import RUNTIME, TEMPLATES, Texts, plain_page
from services.notice_links import notice_for_page, verify_notice


async def notice_page(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    now = runtime.core.clock()
    delivery_id = verify_notice(request.match_info.get("token", "")[:200], secret=runtime.settings.id_encryption_key,
                                now=now)
    if delivery_id is None:
        return plain_page(request, "notice_gone", status=404)
    async with runtime.sessions() as session:
        found = await notice_for_page(session, delivery_id=delivery_id)
    if found is None:
        return plain_page(request, "notice_gone", status=404)
    row, text, actions, lang = found
    local = row.created_at.astimezone(ZoneInfo(runtime.settings.timezone))
    body = request.app[TEMPLATES].get_template("notice.html").render(
        T=Texts(lang), lang=lang, paragraphs=text.split("\n"), actions=actions, sent=f"{local:%Y-%m-%d %H:%M}")
    return web.Response(text=body, content_type="text/html",
                        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"})


def setup(app: web.Application) -> None:
    app.router.add_get("/n/{token}", notice_page)
