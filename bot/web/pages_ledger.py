"""/admin/ledger: the 台账 filtered by date, organization and volunteer; pending hours and pending
corrections reviewed here (services.hours_review, services.corrections: the chat's rules); a
coordinator's own correction or voiding of a record; downloads as xlsx and CSV (services.exports)."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from bot.web.core import Ctx, Paging, date_param, page, paging, sort_param
from common.i18n import Text, _
from handlers.permissions import ORG_DENIED
from services.corrections import pending_corrections, record_lines
from services.exports import CONTENT_TYPES, FORMATS, write_table
from services.hours import HoursError
from services.hours_review import pending_hours, review_hours
from services.ledger import LedgerRow, ledger_rows, ledger_table

SORTS = ("date", "name", "hours")


async def _filtered(ctx: Ctx) -> tuple[list[LedgerRow], dict[str, object]]:
    today = ctx.today
    start = date_param(ctx.request, "from", date(today.year, 1, 1))
    end = date_param(ctx.request, "to", today)
    org_raw = ctx.request.query.get("org", "")
    org_ids = [int(org_raw)] if org_raw.isdigit() and int(org_raw) in ctx.user.org_ids else ctx.user.org_ids
    name = ctx.request.query.get("q", "").strip()[:30]
    rows = await ledger_rows(ctx.session, organization_ids=org_ids, start=start, end=end, tz=ctx.tz, name=name)
    key, descending = sort_param(ctx.request, SORTS, "-date")
    sort_key = {"date": lambda r: (r.served_on, r.name), "name": lambda r: (r.name, r.served_on),
                "hours": lambda r: (r.hours, r.served_on)}[key]
    rows.sort(key=sort_key, reverse=descending)
    return rows, {"start": start, "end": end, "org": org_raw, "q": name, "sort": key, "desc": descending}


async def render_ledger(ctx: Ctx, *, error: str | None = None, status: int = 200) -> web.Response:
    """The page; after a refused POST with the reason on top (and the refusal's status)."""
    rows, filters = await _filtered(ctx)
    first = paging(ctx.request)
    pager = Paging(first.page, first.size, len(rows))
    reviewer, admin = ctx.user.person.id or 0, ctx.user.admin
    pending = await pending_hours(ctx.session, reviewer_id=reviewer, admin=admin, limit=50)
    corrections = await pending_corrections(ctx.session, reviewer_id=reviewer, admin=admin, limit=50)
    name = str(filters["q"])
    records = (await record_lines(ctx.session, name=name, organization_ids=None if admin else ctx.user.org_ids,
                                  limit=30)) if name else []
    query = ctx.with_query(page=None)[len(ctx.request.path):] if ctx.request.method == "GET" else ""
    response = ctx.render("ledger.html", rows=rows[pager.offset:pager.offset + pager.size], pager=pager,
                          total_hours=sum(r.hours for r in rows), pending=pending, corrections=corrections,
                          records=records, downloads={fmt: f"/admin/ledger.{fmt}{query}" for fmt in FORMATS},
                          error=error, **filters)
    response.set_status(status)
    return response


@page
async def ledger(ctx: Ctx) -> web.StreamResponse:
    return await render_ledger(ctx)


def download(fmt: str):  # noqa: ANN201 - a page handler
    @page
    async def ledger_download(ctx: Ctx) -> web.StreamResponse:
        rows, filters = await _filtered(ctx)
        name = f"ledger-{filters['start']}-{filters['end']}.{fmt}"
        return web.Response(body=write_table(ledger_table(rows), fmt, lang=ctx.user.lang),
                            content_type=CONTENT_TYPES[fmt], charset="utf-8" if fmt == "csv" else None,
                            headers={"Content-Disposition": f'attachment; filename="{name}"',
                                     "Cache-Control": "no-store"})
    return ledger_download


@page
async def review(ctx: Ctx) -> web.StreamResponse:
    """Approve or reject one self-reported record (services/hours_review.py: the chat's 待审核时长)."""
    raw = ctx.request.match_info.get("id", "")
    form = await ctx.request.post()
    decision = str(form.get("decision", ""))
    if not raw.isdigit() or len(raw) > 9 or decision not in ("approve", "reject"):
        raise web.HTTPBadRequest(text="400")
    try:
        await review_hours(ctx.session, record_id=int(raw), reviewer_id=ctx.user.person.id or 0, admin=ctx.user.admin,
                           approve=decision == "approve", now=ctx.now)
    except HoursError as refused:
        message: Text = {"not_manager": ORG_DENIED, "not_found": _("没有找到这条记录。")}.get(
            refused.reason, _("这条记录已经审核过了。"))
        if refused.reason == "not_manager":
            raise web.HTTPForbidden(text=ctx.render_text(message)) from refused
        raise web.HTTPConflict(text=ctx.render_text(message)) from refused
    raise web.HTTPSeeOther("/admin/ledger?ok=" + ("approved" if decision == "approve" else "rejected") + "#pending")


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/ledger", ledger)
    for fmt in FORMATS:
        app.router.add_get(f"/admin/ledger.{fmt}", download(fmt))
    app.router.add_post("/admin/ledger/review/{id}", review)
