"""Corrections on /admin/ledger: approve or reject (with a reason) a volunteer's pending correction, and a
coordinator's own correction or voiding of a record with a reason — services.corrections decides who may,
the chat's texts (handlers.corrections_common) say why not. A refusal shows the ledger with the reason."""

from __future__ import annotations

from aiohttp import web

from bot.web.core import Ctx, page
from bot.web.pages_ledger import render_ledger
from handlers.corrections_common import ERRORS, refusal
from handlers.validation import InvalidInput, parse_hours
from models.corrections import REASON_MAX
from services.corrections import REASON_MIN, check_hours, correct_directly, decide_correction
from services.hours import HoursError

STATUS = {"not_manager": 403, "not_found": 404}


def _id(ctx: Ctx) -> int | None:
    raw = ctx.request.match_info.get("id", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _reason(raw: object) -> str:
    """The chat's rule for a reason: 2–200 characters after folding spaces."""
    reason = " ".join(str(raw or "").split())
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise InvalidInput("reason_length")
    return reason


async def _refused(ctx: Ctx, error: HoursError | InvalidInput) -> web.Response:
    if isinstance(error, InvalidInput):
        return await render_ledger(ctx, error=ctx.render_text(ERRORS[error.key]), status=400)
    return await render_ledger(ctx, error=ctx.render_text(refusal(error)), status=STATUS.get(error.reason, 409))


@page
async def decide(ctx: Ctx) -> web.StreamResponse:
    """POST decision=approve|reject (+ note, required to reject): the chat's 审核更正."""
    form = await ctx.request.post()
    decision, correction_id = str(form.get("decision", "")), _id(ctx)
    if correction_id is None or decision not in ("approve", "reject"):
        return await _refused(ctx, HoursError("not_found"))
    try:
        note = _reason(form.get("note")) if decision == "reject" else ""
        await decide_correction(ctx.session, correction_id=correction_id, decider_id=ctx.user.person.id or 0,
                                admin=ctx.user.admin, approve=decision == "approve", note=note, now=ctx.now)
    except (HoursError, InvalidInput) as error:
        return await _refused(ctx, error)
    raise web.HTTPSeeOther(f"/admin/ledger?ok=correction_{decision}#corrections")


@page
async def correct(ctx: Ctx) -> web.StreamResponse:
    """POST hours=… or void=1, and reason: the chat's 更正时长 (approved at once, the volunteer told)."""
    form = await ctx.request.post()
    record_id, void = _id(ctx), form.get("void") == "1"
    if record_id is None:
        return await _refused(ctx, HoursError("not_found"))
    try:
        hours = None if void else round(parse_hours(str(form.get("hours", ""))[:20]), 2)
        if hours is not None and hours <= 0:
            raise InvalidInput("hours_zero")
        try:
            check_hours(hours)
        except HoursError as error:
            raise InvalidInput("hours_range") from error
        reason = _reason(form.get("reason"))
        await correct_directly(ctx.session, record_id=record_id, coordinator_id=ctx.user.person.id or 0,
                               admin=ctx.user.admin, hours=hours, reason=reason, now=ctx.now)
    except (HoursError, InvalidInput) as error:
        return await _refused(ctx, error)
    raise web.HTTPSeeOther("/admin/ledger?ok=" + ("record_voided" if void else "record_corrected"))


def setup(app: web.Application) -> None:
    app.router.add_post("/admin/ledger/corrections/{id}", decide)
    app.router.add_post("/admin/ledger/records/{id}", correct)
