"""/admin/broadcasts: compose with targeting, see the recipient count, then send; progress of each.

The audience is ``services.broadcasts`` (the chat's 群发); when memberships and the hierarchy are
merged, the same service decides who is reached here.
"""

from __future__ import annotations

from aiohttp import web

from bot.web.core import Ctx, manages, page
from handlers.broadcasts import ERRORS, TARGETS
from handlers.permissions import ORG_DENIED
from models.reminders import TARGET_KINDS
from services.broadcasts import BroadcastError, count_audience, progress, queue_broadcast, recent_broadcasts
from services.registration import skill_label, skills_catalog


async def _history(ctx: Ctx) -> list[tuple[object, object]]:
    rows = await recent_broadcasts(ctx.session, organization_ids=ctx.user.org_ids, limit=20)
    return [(row, await progress(ctx.session, broadcast_id=row.id or 0)) for row in rows]


def _compose(ctx: Ctx, form: dict[str, str], **values: object) -> web.StreamResponse:
    return ctx.render("broadcasts.html", form=form, targets=[(k, ctx.render_text(TARGETS[k])) for k in TARGET_KINDS],
                      skills=[(s.code, skill_label(s.code, ctx.user.lang)) for s in skills_catalog()], **values)


@page
async def broadcasts(ctx: Ctx) -> web.StreamResponse:
    form = {"organization_id": str(ctx.user.org_ids[0]), "kind": "org", "value": "", "text": ""}
    return _compose(ctx, form, history=await _history(ctx), audience=None, error=None)


@page
async def broadcast_post(ctx: Ctx) -> web.StreamResponse:
    """``step=count``: show how many it reaches; ``step=send``: queue it (both recheck everything)."""
    posted = await ctx.request.post()
    form = {key: str(posted.get(key, "")).strip() for key in ("organization_id", "kind", "value", "text")}
    if form["kind"] == "skill":
        form["value"] = str(posted.get("skill", "")).strip()
    org_raw = form["organization_id"]
    if not org_raw.isdigit() or not manages(ctx, int(org_raw)):
        raise web.HTTPForbidden(text=ctx.render_text(ORG_DENIED))
    organization_id = int(org_raw)
    try:
        if form["kind"] not in TARGET_KINDS:
            raise BroadcastError("bad_target")
        audience = await count_audience(ctx.session, organization_id=organization_id, kind=form["kind"],
                                        value=form["value"])
        if posted.get("step") == "send":
            await queue_broadcast(ctx.session, author_id=ctx.user.person.id or 0, organization_id=organization_id,
                                  kind=form["kind"], value=form["value"], text=form["text"], now=ctx.now)
            raise web.HTTPSeeOther("/admin/broadcasts?ok=broadcast_sent")
    except BroadcastError as refused:
        return _compose(ctx, form, history=await _history(ctx), audience=None,
                        error=ctx.render_text(ERRORS.get(refused.reason, ERRORS["bad_target"])))
    return _compose(ctx, form, history=await _history(ctx), audience=audience, error=None)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/broadcasts", broadcasts)
    app.router.add_post("/admin/broadcasts", broadcast_post)
