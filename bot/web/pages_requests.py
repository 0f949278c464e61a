"""/admin/requests: residents' requests of the managed stations; approve, reject with a reason,
re-categorise, assign by hand: the chat's services (services/requests/), the chat's rule (can_manage)."""

from __future__ import annotations

from aiohttp import web

from bot.web.core import Ctx, Paging, page, paging
from common.i18n import Text, _
from common.taxonomy import CATEGORIES, category_label
from handlers.permissions import ORG_DENIED
from models.requests import OPEN_STATUSES, REQUEST_STATUSES
from services.requests import RequestError, can_manage, get_request
from services.requests.lifecycle import approve_request, change_category, reject_request
from services.requests.matching import assign_by_hand, rank_volunteers
from services.web_reads import open_requests

REVIEWABLE = ("pending_review", "approved")
ACTIONS = ("approve", "reject", "category", "assign")


@page
async def request_list(ctx: Ctx) -> web.StreamResponse:
    status = ctx.request.query.get("status", "")
    status = status if status in REQUEST_STATUSES else ""
    first = paging(ctx.request, size=10)
    rows, total = await open_requests(ctx.session, organization_ids=ctx.user.request_scope, status=status or None,
                                      offset=first.offset, limit=first.size)
    candidates = {}
    for request in rows:
        if request.status in REVIEWABLE and request.assignee_id is None:
            candidates[request.id] = [c.person for c in await rank_volunteers(
                ctx.session, request=request, require_fit=False, limit=15)]
    return ctx.render("requests.html", rows=rows, pager=Paging(first.page, first.size, total), status=status,
                      statuses=[(code, REQUEST_STATUSES[code][0 if ctx.user.lang.startswith("zh") else 1])
                                for code in REQUEST_STATUSES],
                      status_name=lambda code: REQUEST_STATUSES.get(code, (code, code))[
                          0 if ctx.user.lang.startswith("zh") else 1],
                      open_statuses=OPEN_STATUSES, candidates=candidates,
                      categories=[(code, category_label(code, ctx.user.lang)) for code in CATEGORIES],
                      category=lambda code: category_label(code, ctx.user.lang))


REFUSALS: dict[str, Text] = {
    "not_pending": _("这条求助已经审核过了。"),
    "status_changed": _("这条求助的状态已经变了，请刷新后再试。"),
    "taken": _("这条求助已经有人接单了。"),
    "reason_required": _("驳回需要填写原因。"),
    "bad_category": _("请选择一个类别。"),
    "not_volunteer": _("只能派给已注册的志愿者。"),
}


@page
async def request_action(ctx: Ctx) -> web.StreamResponse:
    raw = ctx.request.match_info.get("id", "")
    form = await ctx.request.post()
    action = str(form.get("action", ""))
    if not raw.isdigit() or len(raw) > 9 or action not in ACTIONS:
        raise web.HTTPBadRequest(text="400")
    reviewer = ctx.user.person.id or 0
    try:
        request = await get_request(ctx.session, request_id=int(raw))
        if not await can_manage(ctx.session, request=request, person_id=reviewer, admin=ctx.user.admin):
            raise web.HTTPForbidden(text=ctx.render_text(ORG_DENIED))
        category = str(form.get("category", ""))
        if action == "approve":
            await approve_request(ctx.session, request_id=request.id or 0, reviewer_id=reviewer, now=ctx.now,
                                  category=category if category in CATEGORIES else None)
        elif action == "reject":
            await reject_request(ctx.session, request_id=request.id or 0, reviewer_id=reviewer,
                                 reason=str(form.get("reason", "")), now=ctx.now)
        elif action == "category":
            await change_category(ctx.session, request_id=request.id or 0, category=category, now=ctx.now)
        else:
            volunteer = str(form.get("volunteer", ""))
            if not volunteer.isdigit() or len(volunteer) > 9:
                raise RequestError("not_volunteer")
            await assign_by_hand(ctx.session, request_id=request.id or 0, volunteer_id=int(volunteer), now=ctx.now)
    except RequestError as refused:
        if refused.reason == "not_found":
            raise web.HTTPNotFound(text="404") from refused
        message = REFUSALS.get(refused.reason, REFUSALS["status_changed"])
        raise web.HTTPConflict(text=ctx.render_text(message)) from refused
    raise web.HTTPSeeOther(f"/admin/requests?ok=request_{action}#r{request.id}")


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/requests", request_list)
    app.router.add_post("/admin/requests/{id}", request_action)
