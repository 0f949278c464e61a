"""One request shown to whoever asks: everything to the resident and the assignee, masked to coordinators,
category/community/time only to a volunteer it was offered to."""

from __future__ import annotations

from common.i18n import _
from handlers.messages import Choice
from handlers.requests.shared import (
    ApproveRequest,
    AssignRequest,
    CancelRequest,
    ConfirmRequest,
    DeclineRequest,
    FinishService,
    RateRequest,
    Recategorize,
    RejectRequest,
    StartService,
    TakeRequest,
    ViewRequest,
    cat_label,
    err,
    hours_text,
    status_label,
)
from handlers.turn import FeatureRouter, Turn
from models import Person
from models.requests import OPEN_STATUSES, ServiceRequest
from services import requests as service

router = FeatureRouter("requests.view")


def public_lines(turn: Turn, request: ServiceRequest) -> list[str]:
    return [
        turn.text(_("求助 #{id}（{value}）", id=request.id, value=status_label(turn, request.status))),
        turn.text(_("类别：{value}", value=cat_label(turn, request.category))),
        turn.text(_("社区：{community}", community=request.community)),
        turn.text(_("时间：{preferred_time}", preferred_time=request.preferred_time)),
    ]


async def detail_lines(turn: Turn, request: ServiceRequest, *, private: bool) -> list[str]:
    """``private``: the address and full phone — for the resident and the assigned volunteer only."""
    lines = public_lines(turn, request)
    address = turn.text(_("（仅接单志愿者可见）"))
    phone = request.phone_masked or "-"
    if private:
        address = turn.cipher.decrypt(request.address_enc) if request.address_enc else "-"
        phone = turn.cipher.decrypt(request.phone_enc) if request.phone_enc else phone
    lines += [
        turn.text(_("需求：{description}", description=request.description)),
        turn.text(_("地址：{address}", address=address)),
        turn.text(_("联系人：{contact_name}\u3000电话：{phone}", contact_name=request.contact_name, phone=phone)),
    ]
    if request.notes:
        lines.append(turn.text(_("备注：{notes}", notes=request.notes)))
    if request.assignee_id:
        assignee = await turn.session.get(Person, request.assignee_id)
        name = (assignee.name if assignee else None) or "-"
        lines.append(turn.text(_("志愿者：{name}", name=name)))
    if request.reason and request.status in ("rejected", "cancelled"):
        lines.append(turn.text(_("原因：{reason}", reason=request.reason)))
    if request.hours:
        lines.append(turn.text(_("服务时长：{hours} 小时", hours=hours_text(request.hours))))
    if request.rating:
        lines.append(turn.text(_("评价：{rating}", rating=service.rating_text(request.rating)))
                     + (f" {request.comment}" if request.comment else ""))
    return lines


@router.command("reqv", payload=ViewRequest)
async def view_request(turn: Turn, ref: ViewRequest) -> None:
    request = await turn.session.get(ServiceRequest, ref.request_id)
    if request is None:
        err(turn, service.RequestError("not_found"))
        return
    me = turn.person.id
    admin = await turn.admin()
    manager = await service.can_manage(turn.session, request=request, person_id=me, admin=admin)
    rid = request.id
    choices: list[Choice] = []
    if me == request.resident_id:
        lines = await detail_lines(turn, request, private=True)
        if request.status in OPEN_STATUSES:
            choices.append(turn.choice(_("取消求助"), CancelRequest(rid).pack()))
        if request.status == "done":
            choices.append(turn.choice(_("确认并评价"), RateRequest(rid).pack()))
    elif me == request.assignee_id:
        lines = await detail_lines(turn, request, private=True)
        if request.status == "assigned":
            choices.append(turn.choice(_("开始服务"), StartService(rid).pack()))
        if request.status in ("assigned", "in_progress"):
            choices.append(turn.choice(_("服务完成"), FinishService(rid).pack()))
    elif manager:
        # coordinators review without the address (PIPL: only the assignee needs to go there)
        lines = await detail_lines(turn, request, private=False)
        if request.status == "pending_review":
            choices += [turn.choice(_("通过"), ApproveRequest(rid).pack()),
                        turn.choice(_("驳回"), RejectRequest(rid).pack()),
                        turn.choice(_("改类别"), Recategorize(rid).pack())]
        if request.status in ("pending_review", "approved"):
            choices.append(turn.choice(_("手动派单"), AssignRequest(rid).pack()))
        if request.status == "done" and request.confirmed_at is None:
            choices.append(turn.choice(_("确认完成"), ConfirmRequest(rid).pack()))
    else:
        offers = await service.open_offers(turn.session, volunteer_id=me)
        if not any(o.request_id == request.id for o, _r in offers):
            err(turn, service.RequestError("not_found"))
            return
        # an offer: category, community and time only
        lines = public_lines(turn, request)
        choices = [turn.choice(_("接单"), TakeRequest(rid).pack()),
                   turn.choice(_("不接"), DeclineRequest(rid).pack())]
    turn.say("\n".join(lines), choices)
