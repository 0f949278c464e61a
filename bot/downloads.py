"""The signed download links a coordinator gets in chat: the 台账 (导出台账) and an activity's roster (导出名单),
each as ``.xlsx`` or ``.csv`` (the path picks the format, the token grants the data; 24 h, masked data)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime import Runtime
from bot.texts import bilingual
from common.i18n import _
from common.lang import normalize_language
from models import Activity
from services.exports import CONTENT_TYPES, EXPORT_LANGUAGE, FORMATS, Table, write_table
from services.ledger import ledger_rows, ledger_table, verify_export
from services.roster_export import roster_rows, roster_table, verify_roster

Handler = Callable[[web.Request], Awaitable[web.Response]]


Loader = Callable[[AsyncSession, str], Awaitable[tuple[Table, str] | None]]


def download_routes(runtime: Runtime) -> list[web.RouteDef]:
    """GET /ledger.xlsx, /ledger.csv, /roster.xlsx, /roster.csv ?token=…[&lang=en|zh-Hant]"""
    secret = runtime.settings.id_encryption_key

    async def ledger(session: AsyncSession, token: str) -> tuple[Table, str] | None:
        grant = verify_export(token, secret=secret, now=runtime.core.clock())
        if grant is None:
            return None
        rows = await ledger_rows(session, organization_ids=grant.organization_ids, start=grant.start, end=grant.end)
        return ledger_table(rows), f"ledger-{grant.start}-{grant.end}"

    async def roster(session: AsyncSession, token: str) -> tuple[Table, str] | None:
        activity_id = verify_roster(token, secret=secret, now=runtime.core.clock())
        activity = await session.get(Activity, activity_id) if activity_id is not None else None
        if activity is None:
            return None
        rows = await roster_rows(session, activity_id=activity_id, tz=ZoneInfo(runtime.settings.timezone))
        return roster_table(activity, rows), f"roster-{activity_id}"

    def serve(fmt: str, load: Loader) -> Handler:
        async def download(request: web.Request) -> web.Response:
            async with runtime.sessions() as session:
                found = await load(session, request.query.get("token", ""))
            if found is None:
                return web.Response(status=403, text=bilingual(_("链接无效或已过期")) + "\n")
            table, name = found
            lang = normalize_language(request.query.get("lang")) or EXPORT_LANGUAGE
            return web.Response(body=write_table(table, fmt, lang=lang), content_type=CONTENT_TYPES[fmt],
                                charset="utf-8" if fmt == "csv" else None,
                                headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"',
                                         "Cache-Control": "no-store"})
        return download

    return [web.get(f"/{path}.{fmt}", serve(fmt, load)) for fmt in FORMATS
            for path, load in (("ledger", ledger), ("roster", roster))]
