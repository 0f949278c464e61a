"""Coordinators of the request's station: the review queue, approve, reject with a reason, re-categorise,
assign by hand, confirm done."""

from __future__ import annotations

from common.i18n import N_, _, lines
from common.taxonomy import CATEGORIES
from common.text import normalize_width
from handlers.messages import Choice
from handlers.requests.shared import (
    FLOW,
    ApproveRequest,
    AssignRequest,
    ConfirmRequest,
    Recategorize,
    RejectRequest,
    ViewRequest,
    cat_label,
    category_choices,
    err,
    hours_text,
    request_button,
    separator,
    status_label,
    words,
)
from handlers.requests.view import view_request
from handlers.turn import FeatureRouter, Role, Turn
from models.requests import ServiceRequest
from services import requests as service
from services.people import managed_organizations

router = FeatureRouter("requests.review")

REJECT_REASONS = {"scope": N_("不属于志愿服务范围"), "incomplete": N_("信息不完整，请补充后重新提交")}


async def _managed_request(turn: Turn, request_id: int) -> ServiceRequest | None:
    request = await turn.session.get(ServiceRequest, request_id)
    if request is None or not await service.can_manage(turn.session, request=request, person_id=turn.person.id,
                                                       admin=await turn.admin()):
        turn.say(_("找不到这条求助，或你不是该社区的协调员。"))
        return None
    return request


@router.command("reqs", words=words("reqs"), requires=Role.COORDINATOR)
async def review_list(turn: Turn, _arg: str) -> None:
    admin = await turn.admin()
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=False)
    rows = await service.review_queue(turn.session, organization_ids=None if admin else [o.id for o in orgs])
    if not rows:
        turn.say(_("没有待处理的求助。"))
        return
    text = [turn.text(_("待处理的求助："))]
    text += [f"#{r.id} {cat_label(turn, r.category)} · {r.community} · {status_label(turn, r.status)}" for r in rows]
    turn.say("\n".join(text), [request_button(turn, r.id, r.category) for r in rows])


@router.command("approve", payload=ApproveRequest)
async def approve(turn: Turn, ref: ApproveRequest) -> None:
    request = await _managed_request(turn, ref.request_id)
    if request is None:
        return
    try:
        offers = await service.approve_request(turn.session, request_id=request.id, reviewer_id=turn.person.id,
                                               now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    if offers:
        turn.say(_("已通过求助 #{id}，已推送给 {count} 位合适的志愿者。", id=request.id, count=len(offers)))
    else:
        turn.say(_("已通过求助 #{id}，但暂时没有合适的志愿者（技能、社区、空闲都符合），请手动派单。", id=request.id),
                 [turn.choice(_("手动派单"), AssignRequest(request.id).pack())])


@router.command("reject", payload=RejectRequest)
async def reject_entry(turn: Turn, ref: RejectRequest) -> None:
    request = await _managed_request(turn, ref.request_id)
    if request is None:
        return
    turn.state.data = {"request_id": request.id}
    turn.ask(FLOW, "reject_reason", _("驳回求助 #{id}：请写明原因（居民会看到）：", id=request.id),
             [turn.choice(label, f"a:r:{code}") for code, label in REJECT_REASONS.items()])


@router.step(FLOW, "reject_reason")
async def on_reject_reason(turn: Turn, text: str) -> None:
    code = text.removeprefix("a:r:") if text.startswith("a:r:") else None
    if code is not None and code in REJECT_REASONS:
        reason = turn.text(REJECT_REASONS[code])
    else:
        reason = normalize_width(text).strip()
    if len(reason) < 2 or reason.startswith("a:"):
        turn.ask(FLOW, "reject_reason", _("请写明驳回原因："))
        return
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    try:
        await service.reject_request(turn.session, request_id=request_id, reviewer_id=turn.person.id, reason=reason,
                                     now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已驳回求助 #{request_id}，已通知居民。", request_id=request_id))


@router.command("recat", payload=Recategorize)
async def recategorize(turn: Turn, ref: Recategorize) -> None:
    request = await _managed_request(turn, ref.request_id)
    if request is None:
        return
    turn.state.data = {"request_id": request.id}
    turn.ask(FLOW, "recat",
             _("求助 #{id} 当前类别：{value}。改为：", id=request.id, value=cat_label(turn, request.category)),
             category_choices(turn))


@router.step(FLOW, "recat")
async def on_recat(turn: Turn, text: str) -> None:
    code = text.removeprefix("a:cat:") if text.startswith("a:cat:") else None
    if code not in CATEGORIES:
        turn.say(_("请从列表中选择类别。"))
        return
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    try:
        await service.change_category(turn.session, request_id=request_id, category=code, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    await view_request(turn, ViewRequest(request_id))


@router.command("assign", payload=AssignRequest)
async def assign_entry(turn: Turn, ref: AssignRequest) -> None:
    request = await _managed_request(turn, ref.request_id)
    if request is None:
        return
    candidates = await service.rank_volunteers(turn.session, request=request, require_fit=False, limit=8)
    if not candidates:
        turn.say(_("还没有已注册的志愿者可以派单。"))
        return
    turn.state.data = {"request_id": request.id}
    text = [turn.text(_("把求助 #{id} 派给谁？（按匹配度排序）", id=request.id))]
    for c in candidates:
        tags = [_("技能符合")] if c.skill_fit else []
        tags += [_("同社区")] if c.area_fit else []
        tags.append(_("进行中 {load} 单", load=c.load))
        text.append(turn.text(_("· {name}（{tags}）", name=c.person.name or "", tags=lines(*tags, sep=separator("tags")))))
    turn.ask(FLOW, "assign", "\n".join(text), [Choice(label=(c.person.name or "?")[:30], value=f"a:p:{c.person.id}")
                                               for c in candidates])


@router.step(FLOW, "assign")
async def on_assign(turn: Turn, text: str) -> None:
    raw = text.removeprefix("a:p:") if text.startswith("a:p:") else ""
    if not raw.isascii() or not raw.isdigit() or int(raw) > 2**31 - 1:
        turn.say(_("请从列表中选择志愿者。"))
        return
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    try:
        await service.assign_by_hand(turn.session, request_id=request_id, volunteer_id=int(raw), now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已将求助 #{request_id} 派给该志愿者，已通知双方。", request_id=request_id))


@router.command("reqconfirm", payload=ConfirmRequest)
async def coordinator_confirm(turn: Turn, ref: ConfirmRequest) -> None:
    request = await _managed_request(turn, ref.request_id)
    if request is None:
        return
    try:
        await service.confirm_done(turn.session, request_id=request.id, confirmer_id=turn.person.id,
                                   served_on=turn.local(request.done_at or turn.now).date(), now=turn.now,
                                   as_coordinator=True)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已确认求助 #{id} 完成，{value} 小时已记入志愿者的时长。", id=request.id,
               value=hours_text(request.hours)))
