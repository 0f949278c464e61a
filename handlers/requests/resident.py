"""A resident follows their requests: the list, cancelling one, confirming it done with a rating."""

from __future__ import annotations

from common.i18n import N_, _
from common.lang import to_simplified
from common.text import normalize_width
from handlers.messages import Choice
from handlers.requests.shared import (
    FLOW,
    CancelRequest,
    RateRequest,
    cat_label,
    err,
    hours_text,
    optional_ref,
    pattern,
    request_button,
    status_label,
    word_set,
    words,
)
from handlers.turn import FeatureRouter, Turn
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
@router.command("cancelreq", words=words("cancelreq"), takes_arg=True)
@optional_ref(CancelRequest)
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
    turn.state.data = {"request_id": request_id}
    turn.ask(FLOW, "cancel_reason",
             _("确定取消求助 #{request_id} 吗？请说一下原因（或选择下面的选项）：", request_id=request_id),
             [turn.choice(_("已经不需要了"), "a:r:unneeded"),
              turn.choice(_("已找到其他帮助"), "a:r:found"),
              turn.choice(_("不取消了"), "a:keep")])


@router.step(FLOW, "cancel_reason")
async def on_cancel_reason(turn: Turn, text: str) -> None:
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    if text == "a:keep":
        turn.say(_("好的，求助保留。"))
        return
    if text.startswith("a:r:"):
        reason = turn.text(CANCEL_REASONS.get(text.removeprefix("a:r:"), CANCEL_REASONS["unneeded"]))
    else:
        reason = normalize_width(text).strip()
    try:
        await service.cancel_request(turn.session, request_id=request_id, resident_id=turn.person.id,
                                     reason=reason, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("求助 #{request_id} 已取消。", request_id=request_id))


# ---- confirming and rating ---------------------------------------------------------------------------
@router.command("rate", words=words("rate"), takes_arg=True)
@optional_ref(RateRequest)
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
    turn.state.data = {"request_id": request_id}
    turn.ask(FLOW, "rating",
             _("志愿者报告求助 #{request_id} 已完成（{value} 小时）。确认的话，请给这次服务打分（1–5 星）：",
               request_id=request_id, value=hours_text(request.hours)),
             [Choice(label="★" * n, value=f"a:r:{n}") for n in range(1, 6)]
             + [turn.choice(_("还没有完成"), "a:notdone")])


@router.step(FLOW, "rating")
async def on_rating(turn: Turn, text: str) -> None:
    if text == "a:notdone":
        request = await turn.session.get(ServiceRequest, int(turn.data["request_id"]))
        turn.end_flow()
        turn.say(_("好的，已告诉社区协调员，他们会跟进。"))
        if request is not None:
            await service.notify_station(
                turn.session, request=request, now=turn.now,
                message=_("居民表示求助 #{id} 还没有完成，请跟进。", id=request.id))
        return
    match = pattern("rating").fullmatch(normalize_width(text).strip())
    if not match:
        turn.say(_("请回复 1 到 5 的数字。"))
        return
    turn.set_data(rating=int(match.group(1)))
    turn.ask(FLOW, "comment", _("谢谢！想对志愿者说点什么吗？（可以跳过）"),
             [turn.choice(_("跳过"), "a:skip")])


@router.step(FLOW, "comment")
async def on_comment(turn: Turn, text: str) -> None:
    skipped = text == "a:skip" or to_simplified(text).strip().lower() in word_set("skip_words")
    comment = "" if skipped else text.strip()
    request_id = int(turn.data["request_id"])
    rating = int(turn.data["rating"])
    turn.end_flow()
    try:
        request = await service.confirm_done(turn.session, request_id=request_id, confirmer_id=turn.person.id,
                                             served_on=turn.today, now=turn.now, rating=rating, comment=comment)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("感谢评价！求助 #{id} 已完成（{rating}），志愿者的服务时长已记录。",
               id=request.id, rating=service.rating_text(rating)))

