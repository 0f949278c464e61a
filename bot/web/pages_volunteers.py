"""/admin/volunteers: the managed organizations' volunteers — members (with their organization) and past
participants, as broadcasts reach them — phone and ID masked, hours this year, star level; ``?org=`` one
organization and those below it (services.orgs.descendant_ids)."""

from __future__ import annotations

from aiohttp import web

from bot.web.core import Ctx, Paging, page, paging, sort_param
from services.orgs import descendant_ids
from services.registration import skill_label
from services.web_reads import volunteer_rows

SORTS = ("name", "total", "year")


@page
async def volunteers(ctx: Ctx) -> web.StreamResponse:
    key, descending = sort_param(ctx.request, SORTS, "-year")
    first = paging(ctx.request)
    org_raw = ctx.request.query.get("org", "")
    org_ids = ctx.user.org_ids
    if org_raw.isdigit() and int(org_raw) in org_ids:
        org_ids = sorted(await descendant_ids(ctx.session, organization_id=int(org_raw)))
    rows, total = await volunteer_rows(ctx.session, organization_ids=org_ids, year=ctx.today.year,
                                       sort=key, descending=descending, offset=first.offset, limit=first.size)

    def skills(codes: str) -> str:
        return ", ".join(skill_label(code, ctx.user.lang) for code in codes.split(",") if code)

    return ctx.render("volunteers.html", rows=rows, pager=Paging(first.page, first.size, total), sort=key,
                      desc=descending, skills=skills, year=ctx.today.year, org=org_raw)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/volunteers", volunteers)
