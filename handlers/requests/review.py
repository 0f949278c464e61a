"""Coordinators of the request's station: the review queue, approve, reject with a reason, re-categorise,
assign by hand, confirm done."""

from __future__ import annotations

from pydantic import BaseModel

from common.i18n import N_, Text, _, lines
from common.taxonomy import CATEGORIES
from common.text import normalize_width
from handlers.flows import Field, Flow
from handlers.messages import Choice
from handlers.payloads import parse_int
from handlers.requests.shared import (
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
from handlers.validation import InvalidInput
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
    await REJECT.start(turn, RequestRef(request_id=request.id))


class RequestRef(BaseModel):
    """The draft of a one-question dialog about a request: its number and the answer."""

    request_id: int = 0
    answer: str = ""


def _reject_prompt(_turn: Turn, draft: RequestRef) -> Text:
    return _("驳回求助 #{id}：请写明原因（居民会看到）：", id=draft.request_id)


def _reject_choices(turn: Turn, _draft: RequestRef) -> list[Choice]:
    return [turn.choice(label, f"a:r:{code}") for code, label in REJECT_REASONS.items()]


def _parse_reject_reason(turn: Turn, text: str) -> str:
    if text.startswith("r:"):
        code = text.removeprefix("r:")
        if code not in REJECT_REASONS:
            raise InvalidInput("reason")
        return turn.text(REJECT_REASONS[code])
    reason = normalize_width(text).strip()
    if len(reason) < 2:
        raise InvalidInput("reason")
    return reason


async def _reject(turn: Turn, draft: RequestRef) -> None:
    if await _managed_request(turn, draft.request_id) is None:  # the station's coordinator still, at the write
        return
    try:
        await service.reject_request(turn.session, request_id=draft.request_id, reviewer_id=turn.person.id,
                                     reason=draft.answer, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已驳回求助 #{request_id}，已通知居民。", request_id=draft.request_id))


REJECT = Flow("reqreject", RequestRef, [
    Field("answer", _reject_prompt, parse=_parse_reject_reason, choices=_reject_choices, reprompt=False),
], requires=Role.COORDINATOR, done=_reject, confirm=False, errors={"reason": _("请写明驳回原因：")})
REJECT.register(router)


@router.command("recat", payload=Recategorize)
async def recategorize(turn: Turn, ref: Recategorize) -> None:
    request = await _managed_request(turn, ref.request_id)
    if request is None:
        return
    await RECATEGORIZE.start(turn, RequestRef(request_id=request.id, answer=request.category))


def _recat_prompt(turn: Turn, draft: RequestRef) -> Text:
    """The draft's answer is the current category until a new one is picked."""
    return _("求助 #{id} 当前类别：{value}。改为：", id=draft.request_id, value=cat_label(turn, draft.answer))


def _parse_category(_turn: Turn, text: str) -> str:
    code = text.removeprefix("cat:") if text.startswith("cat:") else None
    if code not in CATEGORIES:
        raise InvalidInput("category")
    return code


async def _recategorize(turn: Turn, draft: RequestRef) -> None:
    if await _managed_request(turn, draft.request_id) is None:  # the station's coordinator still, at the write
        return
    try:
        await service.change_category(turn.session, request_id=draft.request_id, category=draft.answer, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    await view_request(turn, ViewRequest(draft.request_id))


RECATEGORIZE = Flow("reqrecat", RequestRef, [
    Field("answer", _recat_prompt, parse=_parse_category, choices=lambda turn, _draft: category_choices(turn),
          reprompt=False),
], requires=Role.COORDINATOR, done=_recategorize, confirm=False, errors={"category": _("请从列表中选择类别。")})
RECATEGORIZE.register(router)


@router.command("assign", payload=AssignRequest)
async def assign_entry(turn: Turn, ref: AssignRequest) -> None:
    request = await _managed_request(turn, ref.request_id)
    if request is None:
        return
    candidates = await service.rank_volunteers(turn.session, request=request, require_fit=False, limit=8)
    if not candidates:
        turn.say(_("还没有已注册的志愿者可以派单。"))
        return
    await ASSIGN.start(turn, AssignDraft(request_id=request.id, candidates=[
        Candidate(person_id=c.person.id, name=c.person.name or "", skill_fit=c.skill_fit, area_fit=c.area_fit,
                  load=c.load) for c in candidates]))


class Candidate(BaseModel):
    person_id: int
    name: str
    skill_fit: bool = False
    area_fit: bool = False
    load: int = 0


class AssignDraft(BaseModel):
    request_id: int = 0
    candidates: list[Candidate] = []
    volunteer_id: int | None = None


def _assign_prompt(turn: Turn, draft: AssignDraft) -> Text:
    text = [turn.text(_("把求助 #{id} 派给谁？（按匹配度排序）", id=draft.request_id))]
    for c in draft.candidates:
        tags = [_("技能符合")] if c.skill_fit else []
        tags += [_("同社区")] if c.area_fit else []
        tags.append(_("进行中 {load} 单", load=c.load))
        text.append(turn.text(_("· {name}（{tags}）", name=c.name, tags=lines(*tags, sep=separator("tags")))))
    return "\n".join(text)


def _assign_choices(_turn: Turn, draft: AssignDraft) -> list[Choice]:
    return [Choice(label=(c.name or "?")[:30], value=f"a:p:{c.person_id}") for c in draft.candidates]


def _parse_volunteer(_turn: Turn, text: str) -> int:
    raw = text.removeprefix("p:") if text.startswith("p:") else ""
    volunteer_id = parse_int(raw)
    if volunteer_id is None:
        raise InvalidInput("volunteer")
    return volunteer_id


async def _assign(turn: Turn, draft: AssignDraft) -> None:
    if await _managed_request(turn, draft.request_id) is None:  # the station's coordinator still, at the write
        return
    try:
        await service.assign_by_hand(turn.session, request_id=draft.request_id, volunteer_id=int(draft.volunteer_id or 0),
                                     now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已将求助 #{request_id} 派给该志愿者，已通知双方。", request_id=draft.request_id))


ASSIGN = Flow("reqassign", AssignDraft, [
    Field("volunteer_id", _assign_prompt, parse=_parse_volunteer, choices=_assign_choices, reprompt=False),
], requires=Role.COORDINATOR, done=_assign, confirm=False, errors={"volunteer": _("请从列表中选择志愿者。")})
ASSIGN.register(router)


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
