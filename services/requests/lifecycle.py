"""A request's life: asking, review, serving, closing (rating and hours), cancelling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import _, lines
from common.masking import scrub
from common.taxonomy import CATEGORIES
from models import Person
from models.requests import ACTIVE_ASSIGNMENT_STATUSES, OPEN_STATUSES, RequestOffer, ServiceRequest
from services.hours import HoursError
from services.hours_review import add_hours
from services.notify import notify_person
from services.requests.core import (
    MAX_SERVICE_HOURS,
    RequestError,
    category_text,
    get_request,
    notify_many,
    notify_resident,
    notify_station,
    rating_text,
    station_for,
    stored_text,
    summary,
    transition,
)
from services.requests.matching import offer_next


@dataclass(frozen=True, slots=True)
class NewRequest:
    category: str
    description: str
    community: str
    address_enc: str | None
    contact_name: str
    phone_enc: str | None
    phone_masked: str | None
    preferred_time: str
    notes: str = ""


async def create_request(session: AsyncSession, *, resident: Person, data: NewRequest, now: datetime) -> ServiceRequest:
    if data.category not in CATEGORIES:
        raise RequestError("bad_category")
    station = await station_for(session, community=data.community, area=resident.area)
    # the dialog has already moved a typed phone or address into the encrypted fields; whatever is
    # left in the free text is masked here, so no coordinator notice or list ever shows it
    request = ServiceRequest(
        resident_id=resident.id, category=data.category, description=scrub(data.description).text[:1000],
        community=data.community[:128], address_enc=data.address_enc, contact_name=data.contact_name[:64],
        phone_enc=data.phone_enc, phone_masked=data.phone_masked, preferred_time=data.preferred_time[:128],
        notes=scrub(data.notes).text[:500], status="pending_review", organization_id=station.id if station else None,
        created_at=now, updated_at=now,
    )
    session.add(request)
    await session.flush()
    await notify_station(
        session, request=request, now=now,
        message=_("新的居民求助待审核：{summary}\n{description}", summary=summary(request),
                  description=request.description[:80]),
        choices=[(_("查看审核"), f"reqv:{request.id}")],
    )
    return request


async def approve_request(session: AsyncSession, *, request_id: int, reviewer_id: int, now: datetime,
                          category: str | None = None) -> list[RequestOffer]:
    request = await get_request(session, request_id=request_id)
    if request.status != "pending_review":
        raise RequestError("not_pending")
    values: dict[str, object] = {"status": "approved", "reviewed_by": reviewer_id, "reviewed_at": now,
                                 "updated_at": now}
    if category:
        values["category"] = category
    await transition(session, request, allowed=("pending_review",), values=values)
    await notify_resident(session, request, now=now,
                          message=_("你的求助 {summary} 已通过审核，正在为你联系志愿者。", summary=summary(request)))
    return await offer_next(session, request=request, now=now)


async def reject_request(session: AsyncSession, *, request_id: int, reviewer_id: int, reason: str,
                         now: datetime) -> ServiceRequest:
    request = await get_request(session, request_id=request_id)
    if request.status != "pending_review":
        raise RequestError("not_pending")
    reason = reason.strip()[:500]
    if not reason:
        raise RequestError("reason_required")
    await transition(session, request, allowed=("pending_review",),
                     values={"status": "rejected", "reason": reason, "reviewed_by": reviewer_id,
                             "reviewed_at": now, "closed_at": now, "updated_at": now})
    await notify_resident(session, request, now=now,
                          message=_("很抱歉，你的求助 {summary} 未通过审核。原因：{reason}", summary=summary(request),
                                    reason=reason))
    return request


async def change_category(session: AsyncSession, *, request_id: int, category: str, now: datetime) -> ServiceRequest:
    if category not in CATEGORIES:
        raise RequestError("bad_category")
    request = await get_request(session, request_id=request_id)
    if request.status not in ("pending_review", "approved"):
        raise RequestError("status_changed")
    request.category = category
    request.updated_at = now
    session.add(request)
    await session.flush()
    return request


# ---- serving and closing ------------------------------------------------------------------------
def _require_assignee(request: ServiceRequest, volunteer_id: int) -> None:
    if request.assignee_id != volunteer_id:
        raise RequestError("not_assignee")


async def start_service(session: AsyncSession, *, request_id: int, volunteer_id: int, now: datetime) -> ServiceRequest:
    request = await get_request(session, request_id=request_id)
    _require_assignee(request, volunteer_id)
    await transition(session, request, allowed=("assigned",),
                     values={"status": "in_progress", "started_at": now, "updated_at": now})
    await notify_resident(session, request, now=now,
                          message=_("志愿者已开始为你服务：{summary}。", summary=summary(request)))
    return request


async def mark_done(session: AsyncSession, *, request_id: int, volunteer_id: int, hours: float,
                    now: datetime) -> ServiceRequest:
    if not 0 < hours <= MAX_SERVICE_HOURS:
        raise RequestError("bad_hours")
    request = await get_request(session, request_id=request_id)
    _require_assignee(request, volunteer_id)
    await transition(session, request, allowed=ACTIVE_ASSIGNMENT_STATUSES,
                     values={"status": "done", "hours": hours, "done_at": now, "updated_at": now,
                             "started_at": request.started_at or now})
    await notify_resident(
        session, request, now=now,
        message=_("志愿者报告服务已完成：{summary}，用时 {hours} 小时。请确认并给这次服务打分（1–5 星）：发送「确认完成」。",
                  summary=summary(request), hours=f"{hours:g}"),
        choices=[(_("确认并评价"), f"rate:{request.id}")],
    )
    return request


async def confirm_done(session: AsyncSession, *, request_id: int, confirmer_id: int, served_on: date, now: datetime,
                       rating: int | None = None, comment: str | None = None,
                       as_coordinator: bool = False) -> ServiceRequest:
    """The resident (with a 1–5 rating) or a station coordinator confirms; the hours go to the ledger."""
    request = await get_request(session, request_id=request_id)
    if not as_coordinator and confirmer_id != request.resident_id:
        raise RequestError("not_resident")
    if rating is not None and not 1 <= rating <= 5:
        raise RequestError("bad_rating")
    if request.status == "rated" or (request.status == "done" and request.confirmed_at and rating is None):
        raise RequestError("already_confirmed")
    if request.status != "done":
        raise RequestError("not_done")
    values: dict[str, object] = {"updated_at": now}
    if rating is not None:
        values.update(status="rated", rating=rating, comment=(comment or "").strip()[:500] or None, closed_at=now)
    if request.hour_record_id is None:
        how = _("协调员确认") if as_coordinator else _("居民确认")
        note = _("居民求助 #{id} {category}（{how}）", id=request.id, category=category_text(request.category), how=how)
        assert request.assignee_id is not None
        try:  # a resident's confirmation is the volunteer's report: it waits for the station's coordinator
            record = await add_hours(session, person_id=request.assignee_id, hours=request.hours or 0,
                                     served_on=served_on, organization_id=request.organization_id, source="request",
                                     note=stored_text(note), recorded_by=confirmer_id, now=now,
                                     self_reported=not as_coordinator)
        except HoursError as error:
            raise RequestError(error.reason) from error
        values.update(hour_record_id=record.id, confirmed_at=now)
    await transition(session, request, allowed=("done",), values=values)
    assert request.assignee_id is not None
    hours = f"{request.hours or 0:g}"
    if as_coordinator:
        confirmed = _("求助 {summary} 已确认完成，{hours} 小时已记入你的志愿时长。", summary=summary(request), hours=hours)
    elif rating:
        confirmed = _("求助 {summary} 已确认完成，评价 {rating}，{hours} 小时待协调员审核后计入你的志愿时长。",
                      summary=summary(request), rating=rating_text(rating), hours=hours)
    else:
        confirmed = _("求助 {summary} 已确认完成，{hours} 小时待协调员审核后计入你的志愿时长。",
                      summary=summary(request), hours=hours)
    said = _("居民留言：{comment}", comment=request.comment) if request.comment else None
    await notify_person(session, person_id=request.assignee_id, now=now, source="request",
                        message=lines(confirmed, said))
    if as_coordinator and confirmer_id != request.resident_id:
        await notify_resident(session, request, now=now,
                              message=_("社区已确认求助 {summary} 完成。欢迎发送「确认完成」给志愿者打分。",
                                        summary=summary(request)),
                              choices=[(_("评价"), f"rate:{request.id}")])
    return request


async def cancel_request(session: AsyncSession, *, request_id: int, resident_id: int, reason: str,
                         now: datetime) -> ServiceRequest:
    request = await get_request(session, request_id=request_id)
    if request.resident_id != resident_id:
        raise RequestError("not_resident")
    if request.status not in OPEN_STATUSES:
        raise RequestError("status_changed")
    await transition(session, request, allowed=OPEN_STATUSES,
                     values={"status": "cancelled", "reason": reason.strip()[:500] or stored_text(_("居民取消")),
                             "closed_at": now, "updated_at": now})
    offers = list(await session.exec(
        select(RequestOffer).where(RequestOffer.request_id == request_id, RequestOffer.status == "offered")
    ))
    for offer in offers:
        offer.status = "cancelled"
        offer.responded_at = now
        session.add(offer)
    await notify_many(session, [o.volunteer_id for o in offers], now=now,
                      message=_("求助 {summary} 已被居民取消，不用再接单了。", summary=summary(request)))
    if request.assignee_id is not None:
        await notify_person(session, person_id=request.assignee_id, now=now, source="request", urgent=True,
                            message=_("你接的求助 {summary} 已被居民取消，不用再上门了。", summary=summary(request)))
    await notify_station(session, request=request, now=now,
                         message=_("居民取消了求助 {summary}。", summary=summary(request)))
    return request
