"""/admin/observances: the year's reminder calendar (services.calendar.year_calendar), each day switched
on or off and its reminder text edited through services.observances — the chat's 节日管理 rules: the
national calendar is the admins', an organization's own days its coordinators'."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from aiohttp import web

from bot.web.core import Ctx, int_param, page
from common.i18n import Text, _, by_language
from handlers.observances import TEXT_ERRORS
from handlers.permissions import ORG_DENIED
from models.reminders import Observance
from services.calendar import year_calendar
from services.observances import ObservanceError, set_active, set_reminder_text

REFUSALS: dict[str, Text] = {
    "national": _("全国性的节日只有管理员可以修改；你可以添加本组织自己的纪念日。"),
    "not_manager": ORG_DENIED,
    "not_found": _("找不到这个节日。"),
    "text_length": TEXT_ERRORS["text_length"],
}
STATUS = {"national": 403, "not_manager": 403, "not_found": 404, "text_length": 400}


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    observance: Observance
    name: str
    organization: str  # "" for the national calendar
    editable: bool


async def render_calendar(ctx: Ctx, *, error: str | None = None, status: int = 200) -> web.Response:
    year = int_param(ctx.request, "year", ctx.today.year, minimum=2000, maximum=2100)
    names = {o.id: o.name for o in ctx.user.organizations}
    days = []
    for entry in await year_calendar(ctx.session, year=year, include_inactive=True):
        owner = entry.observance.organization_id
        if owner is not None and owner not in names and not ctx.user.admin:
            continue  # another organization's own day
        days.append(Day(entry.day, entry.observance,
                        ctx.render_text(by_language(entry.observance.name, entry.observance.name_en)),
                        names.get(owner, "") if owner is not None else "",
                        ctx.user.admin or owner is not None))
    response = ctx.render("observances.html", days=days, year=year, error=error)
    response.set_status(status)
    return response


@page
async def observances(ctx: Ctx) -> web.StreamResponse:
    return await render_calendar(ctx)


@page
async def change(ctx: Ctx) -> web.StreamResponse:
    """POST action=on|off, or action=text with text."""
    raw = ctx.request.match_info.get("id", "")
    form = await ctx.request.post()
    action = str(form.get("action", ""))
    who = {"editor_id": ctx.user.person.id or 0, "admin": ctx.user.admin, "now": ctx.now}
    try:
        if not raw.isdigit() or len(raw) > 9 or action not in ("on", "off", "text"):
            raise ObservanceError("not_found")
        if action == "text":
            await set_reminder_text(ctx.session, observance_id=int(raw), text=str(form.get("text", "")), **who)
        else:
            await set_active(ctx.session, observance_id=int(raw), active=action == "on", **who)
    except ObservanceError as refused:
        return await render_calendar(ctx, error=ctx.render_text(REFUSALS[refused.reason]),
                                     status=STATUS[refused.reason])
    raise web.HTTPSeeOther(f"/admin/observances?ok=observance_{action}#o{raw}")


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/observances", observances)
    app.router.add_post("/admin/observances/{id}", change)
