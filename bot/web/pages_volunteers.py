"""/admin/volunteers: the organizations' volunteers, phone and ID masked, hours this year, star level.

When memberships (issue 12 item 5) are merged, ``services.web_reads.volunteer_ids`` follows them.
"""

from __future__ import annotations

from aiohttp import web

from bot.web.core import Ctx, Paging, page, paging, sort_param
from services.registration import skill_label
from services.web_reads import volunteer_rows

SORTS = ("name", "total", "year")


@page
async def volunteers(ctx: Ctx) -> web.StreamResponse:
    key, descending = sort_param(ctx.request, SORTS, "-year")
    first = paging(ctx.request)
    rows, total = await volunteer_rows(ctx.session, organization_ids=ctx.user.org_ids, year=ctx.today.year,
                                       sort=key, descending=descending, offset=first.offset, limit=first.size)

    def skills(codes: str) -> str:
        return ", ".join(skill_label(code, ctx.user.lang) for code in codes.split(",") if code)

    return ctx.render("volunteers.html", rows=rows, pager=Paging(first.page, first.size, total), sort=key,
                      desc=descending, skills=skills, year=ctx.today.year)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/volunteers", volunteers)
