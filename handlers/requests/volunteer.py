"""Volunteers: offers (accept / decline), their tasks, starting and finishing with hours; the no-money rule."""

from __future__ import annotations

import re

from pydantic import BaseModel

from common.i18n import Text, _, lines
from common.lang import to_simplified
from handlers.flows import Field, Flow
from handlers.requests.shared import (
    DeclineRequest,
    FinishService,
    StartService,
    TakeRequest,
    cat_label,
    err,
    pattern,
    request_button,
    separator,
    status_label,
    words,
)
from handlers.requests.view import detail_lines, public_lines
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput, parse_hours
from models.requests import ServiceRequest
from services import requests as service

router = FeatureRouter("requests.volunteer")


# ---- offers ------------------------------------------------------------------------------------------
@router.command("take", words=words("take"), takes_arg=True, payload=TakeRequest, optional=True)
async def take(turn: Turn, ref: TakeRequest | None) -> None:
    request_id = ref.request_id if ref else None
    if request_id is None:
        offers = await service.open_offers(turn.session, volunteer_id=turn.person.id)
        if not offers:
            latest = await service.latest_offer(turn.session, volunteer_id=turn.person.id)
            if latest is not None and latest.status in ("taken", "cancelled"):
                err(turn, service.RequestError(latest.status))
            else:
                turn.say(_("目前没有推送给你的求助。"))
            return
        if len(offers) > 1:
            text = [turn.text(_("有几条求助等你回复，要接哪一条？"))]
            text += ["· " + separator("fields").join(public_lines(turn, r)[1:]) + f" #{r.id}" for _offer, r in offers]
            turn.say("\n".join(text), [request_button(turn, r.id, r.category, "take") for _offer, r in offers])
            return
        request_id = offers[0][1].id
    try:
        request = await service.accept_offer(turn.session, request_id=request_id, volunteer_id=turn.person.id,
                                             now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    details = "\n".join(await detail_lines(turn, request, private=True))
    turn.say(lines(_("接单成功！请尽快联系居民确认时间。"), details,
                   _("提醒：志愿服务是无偿的，不得向居民收取或变相收取任何费用（《志愿服务条例》第二十一条）。")),
             [turn.choice(_("开始服务"), StartService(request.id).pack()),
              turn.choice(_("服务完成"), FinishService(request.id).pack())])


@router.command("decline", words=words("decline"), takes_arg=True, payload=DeclineRequest, optional=True)
async def decline(turn: Turn, ref: DeclineRequest | None) -> None:
    request_id = ref.request_id if ref else None
    if request_id is None:
        offers = await service.open_offers(turn.session, volunteer_id=turn.person.id)
        if len(offers) != 1:
            turn.say(_("请说明要婉拒哪一条，例如「不接 12」。") if offers else _("目前没有推送给你的求助。"))
            return
        request_id = offers[0][1].id
    try:
        await service.decline_offer(turn.session, request_id=request_id, volunteer_id=turn.person.id, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("好的，已婉拒，我们会联系其他志愿者。"))


# ---- tasks ---------------------------------------------------------------------------------------------
@router.command("tasks", words=words("tasks"))
async def my_tasks(turn: Turn, _arg: str) -> None:
    rows = await service.tasks_of_volunteer(turn.session, volunteer_id=turn.person.id)
    offers = await service.open_offers(turn.session, volunteer_id=turn.person.id)
    if not rows and not offers:
        turn.say(_("你目前没有接下的居民求助。"))
        return
    text = [turn.text(_("我的接单："))]
    text += [f"#{r.id} {cat_label(turn, r.category)} · {r.community} · {status_label(turn, r.status)}" for r in rows]
    if offers:
        text.append(turn.text(_("另有 {count} 条求助等你回复（发送「接单」）。", count=len(offers))))
    turn.say("\n".join(text), [request_button(turn, r.id, r.category) for r in rows])


async def _my_task(turn: Turn, request_id: int | None, statuses: tuple[str, ...]) -> int | None:
    if request_id is not None:
        return request_id
    rows = [r for r in await service.tasks_of_volunteer(turn.session, volunteer_id=turn.person.id)
            if r.status in statuses]
    if len(rows) == 1:
        return rows[0].id
    if not rows:
        turn.say(_("你目前没有进行中的求助。"))
    else:
        await my_tasks(turn, "")
    return None


@router.command("svcstart", words=words("svcstart"), takes_arg=True, payload=StartService, optional=True)
async def start_service(turn: Turn, ref: StartService | None) -> None:
    request_id = await _my_task(turn, ref.request_id if ref else None, ("assigned",))
    if request_id is None:
        return
    try:
        await service.start_service(turn.session, request_id=request_id, volunteer_id=turn.person.id, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已开始服务（#{request_id}），已通知居民。完成后发送「服务完成」并填写时长。", request_id=request_id),
             [turn.choice(_("服务完成"), FinishService(request_id).pack())])


@router.command("svcdone", words=words("svcdone"), takes_arg=True, payload=FinishService, optional=True)
async def done_entry(turn: Turn, ref: FinishService | None) -> None:
    request_id = await _my_task(turn, ref.request_id if ref else None, ("assigned", "in_progress"))
    if request_id is None:
        return
    request = await turn.session.get(ServiceRequest, request_id)
    if request is None or request.assignee_id != turn.person.id:
        err(turn, service.RequestError("not_assignee"))
        return
    await DONE.start(turn, DoneDraft(request_id=request_id))


class DoneDraft(BaseModel):
    request_id: int = 0
    hours: float | None = None


def _hours_prompt(_turn: Turn, draft: DoneDraft) -> Text:
    return _("辛苦了！这次服务（#{request_id}）用了多少小时？（如 1.5 或「两个小时」）", request_id=draft.request_id)


def _parse_service_hours(turn: Turn, text: str) -> float:
    if pattern("money", re.IGNORECASE).search(to_simplified(text)):
        say_money_rule_to_volunteer(turn)
    hours = parse_hours(text)  # InvalidInput("hours_format")
    if not 0 < hours <= service.MAX_SERVICE_HOURS:
        raise InvalidInput("hours_range")
    return hours


async def _mark_done(turn: Turn, draft: DoneDraft) -> None:
    hours = float(draft.hours or 0)
    try:
        await service.mark_done(turn.session, request_id=draft.request_id, volunteer_id=turn.person.id,
                                hours=hours, now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已记录：服务完成，{hours} 小时。居民确认后时长会记入你的志愿时长。", hours=f"{hours:g}"))


DONE = Flow("reqhours", DoneDraft, [
    Field("hours", _hours_prompt, parse=_parse_service_hours, reprompt=False),
], done=_mark_done, confirm=False, errors={
    "hours_format": _("请回复小时数，如 2、1.5 或「一个半小时」："),
    "hours_range": _("服务时长应在 0–24 小时之间，请重新输入："),
})
DONE.register(router)


# ---- 条例 Art 21: no money -------------------------------------------------------------------------------
def say_money_rule_to_volunteer(turn: Turn) -> None:
    turn.say(_("提醒：根据《志愿服务条例》第二十一条，志愿者不得向服务对象收取或者变相收取报酬。居民主动给钱或红包也请婉拒；有材料费等特殊情况请先联系社区协调员。"))


@router.command("fee", words=words("fee"))
async def money_reminder(turn: Turn, text: str) -> None:
    tasks = await service.tasks_of_volunteer(turn.session, volunteer_id=turn.person.id)
    if turn.person.status == "active" or tasks:
        say_money_rule_to_volunteer(turn)
        return
    turn.say(_("志愿服务是无偿的：根据《志愿服务条例》第二十一条，志愿者不得向你收取或者变相收取任何费用。如果有志愿者向你要钱，请告诉我们，社区会处理。"))
    open_requests = [r for r in await service.requests_of_resident(turn.session, resident_id=turn.person.id)
                     if r.status in ("assigned", "in_progress", "done")]
    if open_requests and text:
        request = open_requests[0]
        await service.notify_station(
            turn.session, request=request, now=turn.now, urgent=True,
            message=_("居民就求助 #{id} 反映收费问题：「{value}」请核实（《志愿服务条例》第二十一条）。",
                      id=request.id, value=text[:100]))
