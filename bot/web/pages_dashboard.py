"""/admin/: upcoming activities, open requests, pending hours, and three charts."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from bot.web.charts import bar_chart
from bot.web.core import Ctx, Texts, page
from common.taxonomy import category_label
from services.activities import list_upcoming
from services.corrections import pending_corrections
from services.hours_review import pending_hours
from services.web_reads import (
    hours_per_month,
    open_requests,
    pending_corrections_count,
    pending_hours_count,
    requests_by_category,
    volunteers_by_stars,
)

MONTHS = 12


def last_months(today: date, count: int = MONTHS) -> list[tuple[int, int]]:
    """(year, month) of the last ``count`` months, oldest first, this month last."""
    year, month = today.year, today.month
    months = []
    for _index in range(count):
        months.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


@page
async def dashboard(ctx: Ctx) -> web.StreamResponse:
    orgs, texts = ctx.user.org_ids, Texts(ctx.user.lang)
    upcoming, upcoming_total = await list_upcoming(ctx.session, now=ctx.now, offset=0, limit=8, organization_ids=orgs)
    requests, requests_total = await open_requests(ctx.session, organization_ids=ctx.user.request_scope, limit=8)
    pending = await pending_hours(ctx.session, reviewer_id=ctx.user.person.id or 0, admin=ctx.user.admin, limit=8)
    pending_total = await pending_hours_count(ctx.session, organization_ids=None if ctx.user.admin else orgs)
    corrections = await pending_corrections(ctx.session, reviewer_id=ctx.user.person.id or 0, admin=ctx.user.admin,
                                            limit=8)
    corrections_total = await pending_corrections_count(ctx.session, organization_ids=None if ctx.user.admin else orgs)
    months = last_months(ctx.today)
    per_month = await hours_per_month(ctx.session, organization_ids=orgs, first=date(*months[0], 1), last=ctx.today)
    stars = await volunteers_by_stars(ctx.session, organization_ids=orgs)
    categories = await requests_by_category(ctx.session, organization_ids=ctx.user.request_scope)
    charts = [
        bar_chart([(f"{m}", per_month.get((y, m), 0.0)) for y, m in months], title=texts.chart_hours, unit="h"),
        bar_chart([(texts("stars_n", n=n), float(c)) for n, c in enumerate(stars)], title=texts.chart_stars),
        bar_chart([(category_label(code, ctx.user.lang), float(n)) for code, n in sorted(categories.items())],
                  title=texts.chart_requests),
    ]
    return ctx.render("dashboard.html", upcoming=upcoming, upcoming_total=upcoming_total, requests=requests,
                      requests_total=requests_total, pending=pending, pending_total=pending_total,
                      corrections=corrections, corrections_total=corrections_total, charts=charts,
                      category=lambda code: category_label(code, ctx.user.lang))


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/", dashboard)
