"""A resident follows their requests: the list, cancelling one, confirming it done with a rating."""

from __future__ import annotations

from pydantic import BaseModel

from common.i18n import N_, Text, _
from common.lang import to_simplified
from common.text import normalize_width
from handlers.flows import Field, Flow
from handlers.messages import Choice
from handlers.requests.shared import (
    CancelRequest,
    RateRequest,
    cat_label,
    err,
    hours_text,
    pattern,
    request_button,
    status_label,
    word_set,
    words,
)
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput
from models.requests import OPEN_STATUSES, ServiceRequest
from services import requests as service

router = FeatureRouter("requests.resident")

CANCEL_REASONS = {"unneeded": N_("不需要了"), "found": N_("已找到其他帮助")}


@router.command("myreq", words=words("myreq"))
async def my_requests(turn: Turn, _arg: str) -> None:
    rows = await service.requests_of_resident(turn.session, resident_id=turn.person.id)
    if not rows:
        turn.say(_("你还没有提交过求助。"), [turn.choice(_("我要求助"), "req")])
        return
    text = [turn.text(_("我的求助："))]
    for request in rows:
        text.append(f"#{request.id} {cat_label(turn, request.category)} · {status_label(turn, request.status)}"
                    f" · {turn.fmt_dt(request.created_at)}")
    text.append(turn.text(_("回复序号查看详情。")))
    turn.say("\n".join(text), [request_button(turn, r.id, r.category) for r in rows])


# ---- cancelling ---------------------------------------------------------------------------------------
@router.command("cancelreq", words=words("cancelreq"), takes_arg=True, payload=CancelRequest, optional=True)
async def cancel_entry(turn: Turn, ref: CancelRequest | None) -> None:
    request_id = ref.request_id if ref else None
    if request_id is None:
        rows = [r for r in await service.requests_of_resident(turn.session, resident_id=turn.person.id)
                if r.status in OPEN_STATUSES]
        if len(rows) != 1:
            if not rows:
                turn.say(_("你没有可以取消的求助。"))
            else:
                await my_requests(turn, "")
            return
        request_id = rows[0].id
    await CANCEL.start(turn, CancelDraft(request_id=request_id))


class CancelDraft(BaseModel):
    request_id: int = 0
    keep: bool = False
    reason: str = ""


KEEP = "keep"


def _cancel_prompt(_turn: Turn, draft: CancelDraft) -> Text:
    return _("确定取消求助 #{request_id} 吗？请说一下原因（或选择下面的选项）：", request_id=draft.request_id)


def _cancel_choices(turn: Turn, _draft: CancelDraft) -> list[Choice]:
    return [turn.choice(_("已经不需要了"), "a:r:unneeded"),
            turn.choice(_("已找到其他帮助"), "a:r:found"),
            turn.choice(_("不取消了"), "a:" + KEEP)]


def _parse_cancel_reason(turn: Turn, text: str) -> str | None:
    """The reason given (a button's reason in the reader's language), or None to keep the request."""
    if text == KEEP:
        return None
    if text.startswith("r:"):
        return turn.text(CANCEL_REASONS.get(text.removeprefix("r:"), CANCEL_REASONS["unneeded"]))
    return normalize_width(text).strip()


def _store_cancel_reason(draft: CancelDraft, reason: str | None) -> None:
    draft.keep, draft.reason = reason is None, reason or ""


async def _cancel(turn: Turn, draft: CancelDraft) -> None:
    if draft.keep:
        turn.say(_("好的，求助保留。"))
        return
    try:
        await service.cancel_request(turn.session, request_id=draft.request_id, resident_id=turn.person.id,
                                     reason=draft.reason, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("求助 #{request_id} 已取消。", request_id=draft.request_id))


CANCEL = Flow("reqcancel", CancelDraft, [
    Field("reason", _cancel_prompt, parse=_parse_cancel_reason, choices=_cancel_choices, store=_store_cancel_reason),
], done=_cancel, confirm=False)
CANCEL.register(router)


# ---- confirming and rating ---------------------------------------------------------------------------
@router.command("rate", words=words("rate"), takes_arg=True, payload=RateRequest, optional=True)
async def rate_entry(turn: Turn, ref: RateRequest | None) -> None:
    request_id = ref.request_id if ref else None
    if request_id is None:
        rows = [r for r in await service.requests_of_resident(turn.session, resident_id=turn.person.id)
                if r.status == "done" and r.rating is None]
        if len(rows) != 1:
            if not rows:
                turn.say(_("目前没有等你确认的求助。"))
            else:
                await my_requests(turn, "")
            return
        request_id = rows[0].id
    request = await turn.session.get(ServiceRequest, request_id)
    if request is None or request.resident_id != turn.person.id:
        err(turn, service.RequestError("not_found"))
        return
    if request.status != "done":
        err(turn, service.RequestError("already_confirmed" if request.status == "rated" else "not_done"))
        return
    await RATING.start(turn, RatingDraft(request_id=request_id, hours=request.hours))


class RatingDraft(BaseModel):
    request_id: int = 0
    hours: float | None = None
    not_done: bool = False
    rating: int | None = None
    comment: str | None = None


NOT_DONE = "notdone"


def _rating_prompt(_turn: Turn, draft: RatingDraft) -> Text:
    return _("志愿者报告求助 #{request_id} 已完成（{value} 小时）。确认的话，请给这次服务打分（1–5 星）：",
             request_id=draft.request_id, value=hours_text(draft.hours))


def _rating_choices(turn: Turn, _draft: RatingDraft) -> list[Choice]:
    return ([Choice(label="★" * n, value=f"a:r:{n}") for n in range(1, 6)]
            + [turn.choice(_("还没有完成"), "a:" + NOT_DONE)])


def _parse_rating(_turn: Turn, text: str) -> int | None:
    """1–5 stars, or None: the resident says the service is not done yet."""
    if text == NOT_DONE:
        return None
    match = pattern("rating").fullmatch(normalize_width(text.removeprefix("r:")).strip())
    if not match:
        raise InvalidInput("rating")
    return int(match.group(1))


def _store_rating(draft: RatingDraft, rating: int | None) -> None:
    draft.not_done, draft.rating = rating is None, rating


def _parse_comment(_turn: Turn, text: str) -> str:
    skipped = to_simplified(text).strip().lower() in word_set("skip_words")
    return "" if skipped else text.strip()


async def _rate(turn: Turn, draft: RatingDraft) -> None:
    if draft.not_done:
        turn.say(_("好的，已告诉社区协调员，他们会跟进。"))
        request = await turn.session.get(ServiceRequest, draft.request_id)
        if request is not None:
            await service.notify_station(
                turn.session, request=request, now=turn.now,
                message=_("居民表示求助 #{id} 还没有完成，请跟进。", id=request.id))
        return
    rating = int(draft.rating or 0)
    try:
        request = await service.confirm_done(turn.session, request_id=draft.request_id, confirmer_id=turn.person.id,
                                             served_on=turn.today, now=turn.now, rating=rating,
                                             comment=draft.comment or "")
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("感谢评价！求助 #{id} 已完成（{rating}），志愿者的服务时长已记录。",
               id=request.id, rating=service.rating_text(rating)))


RATING = Flow("reqrate", RatingDraft, [
    Field("rating", _rating_prompt, parse=_parse_rating, choices=_rating_choices, store=_store_rating,
          reprompt=False),
    Field("comment", _("谢谢！想对志愿者说点什么吗？（可以跳过）"), parse=_parse_comment, optional=True,
          when=lambda d: not d.not_done),
], done=_rate, confirm=False, errors={"rating": _("请回复 1 到 5 的数字。")})
RATING.register(router)
