"""Residents' service requests: review, matching and offers, a race-safe accept, closing, pairings.

Rules (documented here because dialogs and tests rely on them):

* **Whose request it is (the station).** A request belongs to the organization whose name matches
  the request's community (one contains the other once station words such as 志愿服务站 / 服务站 are
  stripped: 「花家地社区」 ↔ 「花家地社区志愿服务站」). When nothing matches the community, the
  resident's registered area is tried the same way. When nothing matches either, the request has
  no station and the admins review it. Coordinators of that organization (and admins) are "of
  the area": they review, assign by hand, confirm, and are the only coordinators who see details.
* **Matching.** An approved request is offered to active volunteers (not the resident) whose area
  matches the community, whose skills map to the category (``services.registration.SKILLS``; any
  skill for "other"), and who have fewer than ``MAX_OPEN_ASSIGNMENTS`` requests assigned or in
  progress. They are ranked by current load, then by fewest service requests done recently
  (spreads the work), then by registration order; ``OFFER_BATCH`` at a time. When everybody
  offered has declined, the next batch is offered.
* **Privacy.** Offers carry the category, community and time only. Name, address and phone are
  shown to the assignee and to the station's coordinators, nobody else (``can_see_details``).
* **Accepting.** ``accept_offer`` moves the request with one conditional UPDATE (``WHERE
  status='approved' AND assignee_id IS NULL``) and checks the row count: on PostgreSQL the second
  concurrent UPDATE waits for the first to commit and then matches no row; SQLite has one writer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Text, _
from common.taxonomy import CATEGORIES, category_label
from common.text import cn_number
from models import HourRecord, Organization, Person, Role
from models.requests import (
    ACTIVE_ASSIGNMENT_STATUSES,
    OPEN_STATUSES,
    Pairing,
    RequestOffer,
    ServiceRequest,
    VisitLog,
)
from services.notify import notify_person
from services.registration import SKILLS

OFFER_BATCH = 3
MAX_OPEN_ASSIGNMENTS = 2  # K: a volunteer with this many open assignments gets no new offers
ESCALATE_AFTER = timedelta(hours=4)  # N: nobody accepted → the station's coordinators are told
# a pairing's volunteer is reminded when a visit is overdue; the coordinator this long after that
COORDINATOR_AFTER = timedelta(days=2)
MAX_SERVICE_HOURS = 24.0

SKILL_CATEGORY: dict[str, str] = {skill.code: skill.category for skill in SKILLS}
_STATION_WORDS = re.compile(
    r"(新时代文明实践站|新时代文明实践所|志愿服务站|志愿服务队|志愿者服务站|志愿者协会|服务站|工作站|服务中心|居委会|站)$"
)


class RequestError(Exception):
    """A lifecycle rule was broken; ``reason`` is a stable code the dialog explains."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def category_names(code: str) -> tuple[str, str]:
    return category_label(code, "zh-Hans"), category_label(code, "en")


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", text or "")


def same_area(a: str | None, b: str | None) -> bool:
    """'花家地社区' and '朝阳区花家地社区' are the same area; short fragments never match."""
    left, right = _fold(a or ""), _fold(b or "")
    if len(left) < 2 or len(right) < 2:
        return False
    return left in right or right in left


def station_core(name: str) -> str:
    return _STATION_WORDS.sub("", _fold(name))


async def station_for(session: AsyncSession, *, community: str, area: str | None) -> Organization | None:
    """The organization whose name matches the community, else the resident's area (see module doc)."""
    organizations = list(await session.exec(select(Organization).order_by(Organization.id)))
    for place in (community, area):
        if not place:
            continue
        # the longest matching name wins: 「花家地社区站」 over a street-level 「花家地站」
        matches = [o for o in organizations if same_area(station_core(o.name), place)]
        if matches:
            return max(matches, key=lambda o: len(station_core(o.name)))
    return None


# ---- who may see and do what ----------------------------------------------------------------------
async def station_coordinators(session: AsyncSession, *, organization_id: int | None) -> list[int]:
    """People who review a request: the station's coordinators, or the admins when it has none."""
    ids: list[int] = []
    if organization_id is not None:
        rows = await session.exec(
            select(Role.person_id).where(Role.role == "coordinator", Role.organization_id == organization_id)
        )
        ids = sorted(set(rows))
    if not ids:
        ids = sorted(set(await session.exec(select(Role.person_id).where(Role.role == "admin"))))
    return ids


async def can_manage(session: AsyncSession, *, request: ServiceRequest, person_id: int, admin: bool) -> bool:
    if admin:
        return True
    if request.organization_id is None:
        return False
    row = (
        await session.exec(
            select(Role).where(Role.person_id == person_id, Role.role == "coordinator",
                               Role.organization_id == request.organization_id)
        )
    ).first()
    return row is not None


async def can_see_details(session: AsyncSession, *, request: ServiceRequest, person_id: int, admin: bool) -> bool:
    """Name, address and phone: the resident, the assignee, the station's coordinators and admins."""
    if person_id in (request.resident_id, request.assignee_id):
        return True
    return await can_manage(session, request=request, person_id=person_id, admin=admin)


async def get_request(session: AsyncSession, *, request_id: int) -> ServiceRequest:
    request = await session.get(ServiceRequest, request_id)
    if request is None:
        raise RequestError("not_found")
    return request


def _summary(request: ServiceRequest) -> tuple[str, str]:
    """What anybody may see: category, community, time (and the number)."""
    zh_cat, en_cat = category_names(request.category)
    when = request.preferred_time or "时间可商量"
    when_en = request.preferred_time or "time flexible"
    return (f"#{request.id} {zh_cat}｜{request.community}｜{when}",
            f"#{request.id} {en_cat} | {request.community} | {when_en}")


async def _notify_many(session: AsyncSession, person_ids: list[int], *, now: datetime, message: Text | None = None,
                       zh: str = "", en: str = "", choices: list | None = None, urgent: bool = False) -> None:
    for person_id in person_ids:
        await notify_person(session, person_id=person_id, message=message, zh=zh, en=en, now=now, source="request",
                            choices=choices, urgent=urgent)


async def notify_station(session: AsyncSession, *, request: ServiceRequest, zh: str, en: str, now: datetime,
                         urgent: bool = False) -> None:
    """Tell the people who review this request (the station's coordinators, or the admins)."""
    await _notify_many(session, await station_coordinators(session, organization_id=request.organization_id),
                       zh=zh, en=en, now=now, urgent=urgent)


async def _notify_resident(session: AsyncSession, request: ServiceRequest, *, zh: str, en: str, now: datetime,
                           choices: list[tuple[str, str, str]] | None = None) -> None:
    await notify_person(session, person_id=request.resident_id, zh=zh, en=en, now=now, source="request",
                        choices=choices)


# ---- asking and reviewing -----------------------------------------------------------------------
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
    request = ServiceRequest(
        resident_id=resident.id, category=data.category, description=data.description[:1000],
        community=data.community[:128], address_enc=data.address_enc, contact_name=data.contact_name[:64],
        phone_enc=data.phone_enc, phone_masked=data.phone_masked, preferred_time=data.preferred_time[:128],
        notes=data.notes[:500], status="pending_review", organization_id=station.id if station else None,
        created_at=now, updated_at=now,
    )
    session.add(request)
    await session.flush()
    zh, en = _summary(request)
    await _notify_many(
        session, await station_coordinators(session, organization_id=request.organization_id),
        zh=f"新的居民求助待审核：{zh}\n{request.description[:80]}",
        en=f"New resident request to review: {en}\n{request.description[:80]}",
        now=now, choices=[("查看审核", "Review", f"reqv:{request.id}")],
    )
    return request


async def _transition(session: AsyncSession, request: ServiceRequest, *, allowed: tuple[str, ...],
                      values: dict[str, object]) -> None:
    """Conditional UPDATE: the change happens only if nobody else moved the request meanwhile."""
    result = await session.exec(  # type: ignore[call-overload]
        update(ServiceRequest)
        .where(col(ServiceRequest.id) == request.id, col(ServiceRequest.status).in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await session.refresh(request)
        raise RequestError("status_changed")
    await session.refresh(request)


async def approve_request(session: AsyncSession, *, request_id: int, reviewer_id: int, now: datetime,
                          category: str | None = None) -> list[RequestOffer]:
    request = await get_request(session, request_id=request_id)
    if request.status != "pending_review":
        raise RequestError("not_pending")
    values: dict[str, object] = {"status": "approved", "reviewed_by": reviewer_id, "reviewed_at": now,
                                 "updated_at": now}
    if category:
        values["category"] = category
    await _transition(session, request, allowed=("pending_review",), values=values)
    zh, en = _summary(request)
    await _notify_resident(session, request, now=now,
                           zh=f"你的求助 {zh} 已通过审核，正在为你联系志愿者。",
                           en=f"Your request {en} was approved; we are finding a volunteer.")
    return await offer_next(session, request=request, now=now)


async def reject_request(session: AsyncSession, *, request_id: int, reviewer_id: int, reason: str,
                         now: datetime) -> ServiceRequest:
    request = await get_request(session, request_id=request_id)
    if request.status != "pending_review":
        raise RequestError("not_pending")
    reason = reason.strip()[:500]
    if not reason:
        raise RequestError("reason_required")
    await _transition(session, request, allowed=("pending_review",),
                      values={"status": "rejected", "reason": reason, "reviewed_by": reviewer_id,
                              "reviewed_at": now, "closed_at": now, "updated_at": now})
    zh, en = _summary(request)
    await _notify_resident(session, request, now=now,
                           zh=f"很抱歉，你的求助 {zh} 未通过审核。原因：{reason}",
                           en=f"Sorry, your request {en} was not accepted. Reason: {reason}")
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


# ---- matching and offers ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Candidate:
    person: Person
    skill_fit: bool
    area_fit: bool
    load: int  # open assignments


def skill_fits(person: Person, category: str) -> bool:
    codes = [c for c in (person.skills or "").split(",") if c]
    if category == "other":
        return True
    return any(SKILL_CATEGORY.get(code) == category for code in codes)


async def open_assignments(session: AsyncSession, *, person_ids: list[int]) -> dict[int, int]:
    if not person_ids:
        return {}
    rows = await session.exec(
        select(ServiceRequest.assignee_id, func.count())
        .where(col(ServiceRequest.assignee_id).in_(person_ids),
               col(ServiceRequest.status).in_(ACTIVE_ASSIGNMENT_STATUSES))
        .group_by(ServiceRequest.assignee_id)
    )
    return {int(person_id): int(count) for person_id, count in rows if person_id is not None}


async def rank_volunteers(session: AsyncSession, *, request: ServiceRequest, require_fit: bool = True,
                          limit: int | None = None) -> list[Candidate]:
    """Volunteers for this request, best first (see the module doc for the rule)."""
    people = list(await session.exec(
        select(Person).where(Person.status == "active", Person.id != request.resident_id).order_by(Person.id)
    ))
    loads = await open_assignments(session, person_ids=[p.id for p in people if p.id is not None])
    done_rows = await session.exec(
        select(ServiceRequest.assignee_id, func.count())
        .where(col(ServiceRequest.status).in_(("done", "rated")), col(ServiceRequest.assignee_id).is_not(None))
        .group_by(ServiceRequest.assignee_id)
    )
    done = {int(pid): int(n) for pid, n in done_rows if pid is not None}
    candidates = []
    for person in people:
        candidate = Candidate(person=person, skill_fit=skill_fits(person, request.category),
                              area_fit=same_area(person.area, request.community), load=loads.get(person.id, 0))
        if require_fit and not (candidate.skill_fit and candidate.area_fit and candidate.load < MAX_OPEN_ASSIGNMENTS):
            continue
        candidates.append(candidate)
    candidates.sort(key=lambda c: (not (c.skill_fit and c.area_fit), not c.area_fit, c.load,
                                   done.get(c.person.id, 0), c.person.registered_at or c.person.created_at,
                                   c.person.id))
    return candidates[:limit] if limit else candidates


async def offer_next(session: AsyncSession, *, request: ServiceRequest, now: datetime,
                     batch: int = OFFER_BATCH) -> list[RequestOffer]:
    """Offer the request to the next few ranked volunteers not asked yet."""
    if request.status != "approved":
        return []
    asked = set(await session.exec(select(RequestOffer.volunteer_id).where(RequestOffer.request_id == request.id)))
    fresh = [c for c in await rank_volunteers(session, request=request) if c.person.id not in asked][:batch]
    offers = []
    zh, en = _summary(request)
    for candidate in fresh:
        offer = RequestOffer(request_id=request.id, volunteer_id=candidate.person.id, status="offered",
                             offered_at=now)
        session.add(offer)
        offers.append(offer)
    await session.flush()
    for offer in offers:
        # category, community and time only: name, address and phone wait for the assignee
        await notify_person(
            session, person_id=offer.volunteer_id, now=now, source="request_offer", urgent=True,
            zh=f"有一条居民求助需要志愿者：{zh}\n回复「接单 {request.id}」接受，回复「不接 {request.id}」婉拒。"
               "接单后可看到联系方式和地址。",
            en=f"A resident needs a volunteer: {en}\nReply \"accept {request.id}\" to take it or "
               f"\"decline {request.id}\". Contact details are shown once you accept.",
            choices=[("接单", "Accept", f"take:{request.id}"), ("不接", "Decline", f"decline:{request.id}")],
        )
    if not offers:
        pending = (await session.exec(
            select(func.count()).select_from(RequestOffer)
            .where(RequestOffer.request_id == request.id, RequestOffer.status == "offered")
        )).one()
        if not pending and request.escalated_at is None:
            await _escalate(session, request=request, now=now, why_zh="没有合适的志愿者可以推送",
                            why_en="no matching volunteer is available")
    return offers


async def open_offers(session: AsyncSession, *, volunteer_id: int) -> list[tuple[RequestOffer, ServiceRequest]]:
    rows = await session.exec(
        select(RequestOffer, ServiceRequest)
        .join(ServiceRequest, col(ServiceRequest.id) == RequestOffer.request_id)
        .where(RequestOffer.volunteer_id == volunteer_id, RequestOffer.status == "offered",
               ServiceRequest.status == "approved")
        .order_by(col(RequestOffer.offered_at), col(RequestOffer.id))
    )
    return list(rows)


async def latest_offer(session: AsyncSession, *, volunteer_id: int) -> RequestOffer | None:
    return (await session.exec(
        select(RequestOffer).where(RequestOffer.volunteer_id == volunteer_id)
        .order_by(col(RequestOffer.offered_at).desc(), col(RequestOffer.id).desc())
    )).first()


async def accept_offer(session: AsyncSession, *, request_id: int, volunteer_id: int, now: datetime) -> ServiceRequest:
    """The first volunteer to accept gets the request; everybody else is told it is taken."""
    offer = (await session.exec(
        select(RequestOffer).where(RequestOffer.request_id == request_id, RequestOffer.volunteer_id == volunteer_id)
    )).first()
    if offer is None:
        raise RequestError("not_offered")
    if offer.status == "declined":
        raise RequestError("declined")
    result = await session.exec(  # type: ignore[call-overload]
        update(ServiceRequest)
        .where(col(ServiceRequest.id) == request_id, col(ServiceRequest.status) == "approved",
               col(ServiceRequest.assignee_id).is_(None))
        .values(status="assigned", assignee_id=volunteer_id, assigned_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        # someone else was faster (or the resident cancelled): this offer is over
        request = await get_request(session, request_id=request_id)
        await session.refresh(request)
        if request.assignee_id == volunteer_id:
            return request
        offer.status = "taken"
        offer.responded_at = now
        session.add(offer)
        await session.flush()
        raise RequestError("taken" if request.assignee_id is not None else "status_changed")
    request = await get_request(session, request_id=request_id)
    await session.refresh(request)
    await _after_assignment(session, request=request, now=now)
    return request


async def _after_assignment(session: AsyncSession, *, request: ServiceRequest, now: datetime) -> None:
    offers = list(await session.exec(select(RequestOffer).where(RequestOffer.request_id == request.id)))
    zh, en = _summary(request)
    for offer in offers:
        if offer.volunteer_id == request.assignee_id:
            offer.status = "accepted"
            offer.responded_at = now
        elif offer.status == "offered":
            offer.status = "taken"
            offer.responded_at = now
            await notify_person(session, person_id=offer.volunteer_id, now=now, source="request_offer",
                                zh=f"求助 {zh} 已由其他志愿者接单，谢谢你的热心！",
                                en=f"Request {en} has been taken by another volunteer. Thank you!")
        session.add(offer)
    await session.flush()
    assignee = await session.get(Person, request.assignee_id)
    name = (assignee.name if assignee else None) or "志愿者"
    await _notify_resident(session, request, now=now,
                           zh=f"你的求助 {zh} 已派单：志愿者 {name} 会按约定时间联系你。",
                           en=f"Your request {en} is assigned: volunteer {name} will contact you.")


async def decline_offer(session: AsyncSession, *, request_id: int, volunteer_id: int, now: datetime) -> None:
    offer = (await session.exec(
        select(RequestOffer).where(RequestOffer.request_id == request_id, RequestOffer.volunteer_id == volunteer_id,
                                   RequestOffer.status == "offered")
    )).first()
    if offer is None:
        raise RequestError("not_offered")
    offer.status = "declined"
    offer.responded_at = now
    session.add(offer)
    await session.flush()
    remaining = (await session.exec(
        select(func.count()).select_from(RequestOffer)
        .where(RequestOffer.request_id == request_id, RequestOffer.status == "offered")
    )).one()
    if not remaining:
        await offer_next(session, request=await get_request(session, request_id=request_id), now=now)


async def _escalate(session: AsyncSession, *, request: ServiceRequest, now: datetime, why_zh: str, why_en: str) -> None:
    zh, en = _summary(request)
    await _notify_many(
        session, await station_coordinators(session, organization_id=request.organization_id), now=now, urgent=True,
        zh=f"求助 {zh} {why_zh}，请手动派单。", en=f"Request {en}: {why_en}; please assign it by hand.",
        choices=[("手动派单", "Assign by hand", f"assign:{request.id}")],
    )
    request.escalated_at = now
    session.add(request)
    await session.flush()


async def escalate_unaccepted(session: AsyncSession, *, now: datetime, after: timedelta = ESCALATE_AFTER) -> list[int]:
    """Approved requests nobody accepted within ``after``: tell the station's coordinators (once)."""
    rows = list(await session.exec(
        select(ServiceRequest).where(ServiceRequest.status == "approved", col(ServiceRequest.escalated_at).is_(None),
                                     col(ServiceRequest.reviewed_at) <= now - after)
        .order_by(col(ServiceRequest.id))
    ))
    hours = round(after.total_seconds() / 3600, 1)
    for request in rows:
        await _escalate(session, request=request, now=now, why_zh=f"已 {hours:g} 小时无人接单",
                        why_en=f"nobody accepted it within {hours:g} hours")
    return [r.id for r in rows if r.id is not None]


async def assign_by_hand(session: AsyncSession, *, request_id: int, volunteer_id: int, now: datetime) -> ServiceRequest:
    volunteer = await session.get(Person, volunteer_id)
    if volunteer is None or volunteer.status != "active":
        raise RequestError("not_volunteer")
    request = await get_request(session, request_id=request_id)
    if volunteer_id == request.resident_id:
        raise RequestError("not_volunteer")
    result = await session.exec(  # type: ignore[call-overload]
        update(ServiceRequest)
        .where(col(ServiceRequest.id) == request_id, col(ServiceRequest.status).in_(("pending_review", "approved")),
               col(ServiceRequest.assignee_id).is_(None))
        .values(status="assigned", assignee_id=volunteer_id, assigned_at=now, updated_at=now,
                reviewed_at=request.reviewed_at or now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise RequestError("status_changed")
    await session.refresh(request)
    existing = (await session.exec(
        select(RequestOffer).where(RequestOffer.request_id == request_id, RequestOffer.volunteer_id == volunteer_id)
    )).first()
    if existing is None:
        session.add(RequestOffer(request_id=request_id, volunteer_id=volunteer_id, status="accepted",
                                 offered_at=now, responded_at=now))
        await session.flush()
    await _after_assignment(session, request=request, now=now)
    zh, en = _summary(request)
    await notify_person(session, person_id=volunteer_id, now=now, source="request", urgent=True,
                        zh=f"协调员为你派了一单居民求助：{zh}。发送「我的接单」查看联系方式和地址。",
                        en=f"A coordinator assigned you a resident request: {en}. Send \"my tasks\" for the details.",
                        choices=[("查看详情", "Details", f"reqv:{request.id}")])
    return request


# ---- serving and closing ------------------------------------------------------------------------
def _require_assignee(request: ServiceRequest, volunteer_id: int) -> None:
    if request.assignee_id != volunteer_id:
        raise RequestError("not_assignee")


async def start_service(session: AsyncSession, *, request_id: int, volunteer_id: int, now: datetime) -> ServiceRequest:
    request = await get_request(session, request_id=request_id)
    _require_assignee(request, volunteer_id)
    await _transition(session, request, allowed=("assigned",),
                      values={"status": "in_progress", "started_at": now, "updated_at": now})
    zh, en = _summary(request)
    await _notify_resident(session, request, now=now, zh=f"志愿者已开始为你服务：{zh}。",
                           en=f"Your volunteer has started: {en}.")
    return request


async def mark_done(session: AsyncSession, *, request_id: int, volunteer_id: int, hours: float,
                    now: datetime) -> ServiceRequest:
    if not 0 < hours <= MAX_SERVICE_HOURS:
        raise RequestError("bad_hours")
    request = await get_request(session, request_id=request_id)
    _require_assignee(request, volunteer_id)
    await _transition(session, request, allowed=ACTIVE_ASSIGNMENT_STATUSES,
                      values={"status": "done", "hours": hours, "done_at": now, "updated_at": now,
                              "started_at": request.started_at or now})
    zh, en = _summary(request)
    await _notify_resident(
        session, request, now=now,
        zh=f"志愿者报告服务已完成：{zh}，用时 {hours:g} 小时。请确认并给这次服务打分（1–5 星）：发送「确认完成」。",
        en=f"Your volunteer reports {en} done ({hours:g} h). Please confirm and rate it (1–5): send \"confirm\".",
        choices=[("确认并评价", "Confirm and rate", f"rate:{request.id}")],
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
        zh_cat, _en_cat = category_names(request.category)
        how = "协调员确认" if as_coordinator else "居民确认"
        record = HourRecord(
            person_id=request.assignee_id, activity_id=None, hours=request.hours or 0, served_on=served_on,
            recorded_by=confirmer_id, approved=True, source="request",
            note=f"居民求助 #{request.id} {zh_cat}（{how}）"[:500], created_at=now,
        )
        session.add(record)
        await session.flush()
        values.update(hour_record_id=record.id, confirmed_at=now)
    await _transition(session, request, allowed=("done",), values=values)
    zh, en = _summary(request)
    assert request.assignee_id is not None
    stars = f"，评价 {'★' * rating}" if rating else ""
    stars_en = f", rated {rating}/5" if rating else ""
    note_zh = f"\n居民留言：{request.comment}" if request.comment else ""
    note_en = f"\nThe resident wrote: {request.comment}" if request.comment else ""
    await notify_person(session, person_id=request.assignee_id, now=now, source="request",
                        zh=f"求助 {zh} 已确认完成{stars}，{request.hours or 0:g} 小时已记入你的志愿时长。{note_zh}",
                        en=f"Request {en} is confirmed{stars_en}; {request.hours or 0:g} h were added to your "
                           f"hours.{note_en}")
    if as_coordinator and confirmer_id != request.resident_id:
        await _notify_resident(session, request, now=now,
                               zh=f"社区已确认求助 {zh} 完成。欢迎发送「确认完成」给志愿者打分。",
                               en=f"The station confirmed {en} as done. You can still rate it: send \"confirm\".",
                               choices=[("评价", "Rate", f"rate:{request.id}")])
    return request


async def cancel_request(session: AsyncSession, *, request_id: int, resident_id: int, reason: str,
                         now: datetime) -> ServiceRequest:
    request = await get_request(session, request_id=request_id)
    if request.resident_id != resident_id:
        raise RequestError("not_resident")
    if request.status not in OPEN_STATUSES:
        raise RequestError("status_changed")
    await _transition(session, request, allowed=OPEN_STATUSES,
                      values={"status": "cancelled", "reason": reason.strip()[:500] or "居民取消",
                              "closed_at": now, "updated_at": now})
    zh, en = _summary(request)
    offers = list(await session.exec(
        select(RequestOffer).where(RequestOffer.request_id == request_id, RequestOffer.status == "offered")
    ))
    for offer in offers:
        offer.status = "cancelled"
        offer.responded_at = now
        session.add(offer)
    await _notify_many(session, [o.volunteer_id for o in offers], now=now,
                       zh=f"求助 {zh} 已被居民取消，不用再接单了。", en=f"Request {en} was cancelled by the resident.")
    if request.assignee_id is not None:
        await notify_person(session, person_id=request.assignee_id, now=now, source="request", urgent=True,
                            zh=f"你接的求助 {zh} 已被居民取消，不用再上门了。",
                            en=f"The request you took, {en}, was cancelled by the resident; no visit needed.")
    await _notify_many(session, await station_coordinators(session, organization_id=request.organization_id),
                       now=now, zh=f"居民取消了求助 {zh}。", en=f"The resident cancelled request {en}.")
    return request


# ---- lists ----------------------------------------------------------------------------------------
async def requests_of_resident(session: AsyncSession, *, resident_id: int, limit: int = 10) -> list[ServiceRequest]:
    rows = await session.exec(
        select(ServiceRequest).where(ServiceRequest.resident_id == resident_id)
        .order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id).desc()).limit(limit)
    )
    return list(rows)


async def tasks_of_volunteer(session: AsyncSession, *, volunteer_id: int) -> list[ServiceRequest]:
    rows = await session.exec(
        select(ServiceRequest).where(ServiceRequest.assignee_id == volunteer_id,
                                     col(ServiceRequest.status).in_(ACTIVE_ASSIGNMENT_STATUSES + ("done",)))
        .order_by(col(ServiceRequest.assigned_at), col(ServiceRequest.id))
    )
    return list(rows)


async def review_queue(session: AsyncSession, *, organization_ids: list[int] | None) -> list[ServiceRequest]:
    """Requests waiting for a coordinator: to review, unaccepted, or done but unconfirmed.

    ``organization_ids=None`` means every station (an admin), including requests without one.
    """
    query = select(ServiceRequest).where(
        col(ServiceRequest.status).in_(("pending_review", "approved"))
        | ((ServiceRequest.status == "done") & col(ServiceRequest.confirmed_at).is_(None))
    )
    if organization_ids is not None:
        query = query.where(col(ServiceRequest.organization_id).in_(organization_ids))
    rows = await session.exec(query.order_by(col(ServiceRequest.created_at), col(ServiceRequest.id)).limit(20))
    return list(rows)


# ---- 结对帮扶 pairings ---------------------------------------------------------------------------
async def create_pairing(session: AsyncSession, *, volunteer_id: int, resident_name: str, interval_days: int,
                         coordinator_id: int | None, organization_id: int | None, now: datetime,
                         resident_id: int | None = None) -> Pairing:
    volunteer = await session.get(Person, volunteer_id)
    if volunteer is None or volunteer.status != "active":
        raise RequestError("not_volunteer")
    if not 1 <= interval_days <= 90:
        raise RequestError("bad_interval")
    pairing = Pairing(organization_id=organization_id, coordinator_id=coordinator_id, volunteer_id=volunteer_id,
                      resident_name=resident_name.strip()[:64], resident_id=resident_id, interval_days=interval_days,
                      created_at=now)
    session.add(pairing)
    await session.flush()
    await notify_person(
        session, person_id=volunteer_id, now=now, source="pairing",
        message=_("你已与 {resident_name} 结对帮扶，请每 {interval_days} 天看望一次。看望后发一句话记录，例如「看望{resident_name} 1 小时，血压正常」。", resident_name=pairing.resident_name, interval_days=interval_days),
    )
    return pairing


async def pairings_of(session: AsyncSession, *, volunteer_id: int) -> list[Pairing]:
    rows = await session.exec(
        select(Pairing).where(Pairing.volunteer_id == volunteer_id, Pairing.active == True)  # noqa: E712
        .order_by(col(Pairing.id))
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class VisitLine:
    hours: float
    note: str
    text: str  # the whole line, to find which resident it names


_VISIT_VERB = re.compile(r"看望|探望|走访|陪伴|陪|上门|visit(?:ed)?|saw", re.IGNORECASE)
_VISIT_HOURS = re.compile(
    r"(\d{1,2}(?:\.\d{1,2})?|半|一|两|二|三|四)\s*(?:个)?\s*(半)?\s*(?:小时|小時|钟头|h\b|hours?\b|hrs?\b)", re.IGNORECASE
)


def parse_visit_line(text: str) -> VisitLine | None:
    """「看望王奶奶 1 小时，血压正常」 → 1 h, note 「血压正常」; None when it is no visit log."""
    if not _VISIT_VERB.search(text):
        return None
    match = _VISIT_HOURS.search(text)
    if match is None:
        return None
    number = match.group(1)
    if number == "半":
        hours = 0.5
    else:
        hours = float(number) if number[0].isdigit() else float(cn_number(number) or 0)
    if match.group(2):
        hours += 0.5
    if not 0 < hours <= MAX_SERVICE_HOURS:
        return None
    note = re.sub(r"^[\s,，。.;；、]+", "", text[match.end():]).strip()
    return VisitLine(hours=hours, note=note[:400], text=text)


def pairing_named(pairings: list[Pairing], text: str) -> Pairing | None:
    """The pairing whose resident the line names; the only one when the volunteer has just one."""
    folded = _fold(text).lower()
    named = [p for p in pairings if _fold(p.resident_name).lower() in folded]
    if len(named) == 1:
        return named[0]
    if not named and len(pairings) == 1:
        return pairings[0]
    return None


async def log_visit(session: AsyncSession, *, pairing: Pairing, visit: VisitLine, visited_on: date,
                    now: datetime) -> VisitLog:
    record = HourRecord(person_id=pairing.volunteer_id, hours=visit.hours, served_on=visited_on,
                        recorded_by=pairing.volunteer_id, approved=True, source="pairing",
                        note=f"结对帮扶看望 {pairing.resident_name}：{visit.note}"[:500], created_at=now)
    session.add(record)
    await session.flush()
    log = VisitLog(pairing_id=pairing.id, volunteer_id=pairing.volunteer_id, visited_on=visited_on,
                   hours=visit.hours, note=visit.note, hour_record_id=record.id, created_at=now)
    pairing.last_visit_at = now
    pairing.volunteer_reminded_at = None
    pairing.coordinator_reminded_at = None
    session.add(log)
    session.add(pairing)
    await session.flush()
    return log


async def remind_missed_visits(session: AsyncSession, *, now: datetime,
                               coordinator_after: timedelta = COORDINATOR_AFTER) -> dict[str, list[int]]:
    """No visit in N days → remind the volunteer (once); still none ``coordinator_after`` later → the coordinator."""
    pairings = list(await session.exec(select(Pairing).where(Pairing.active == True)))  # noqa: E712
    told: dict[str, list[int]] = {"volunteer": [], "coordinator": []}
    for pairing in pairings:
        due = (pairing.last_visit_at or pairing.created_at) + timedelta(days=pairing.interval_days)
        if now < due:
            continue
        days = (now - (pairing.last_visit_at or pairing.created_at)).days
        if pairing.volunteer_reminded_at is None:
            await notify_person(
                session, person_id=pairing.volunteer_id, now=now, source="pairing", urgent=True,
                message=_("你已经 {days} 天没有看望结对的 {resident_name} 了，方便时去看看吧。看望后发一句话记录，例如「看望{resident_name} 1 小时，一切都好」。", days=days, resident_name=pairing.resident_name),
            )
            pairing.volunteer_reminded_at = now
            told["volunteer"].append(pairing.id)
        elif pairing.coordinator_reminded_at is None and now >= pairing.volunteer_reminded_at + coordinator_after:
            volunteer = await session.get(Person, pairing.volunteer_id)
            name = (volunteer.name if volunteer else None) or "志愿者"
            recipients = ([pairing.coordinator_id] if pairing.coordinator_id else
                          await station_coordinators(session, organization_id=pairing.organization_id))
            await _notify_many(session, recipients, now=now, urgent=True,
                               message=_("结对帮扶提醒：{name} 已 {days} 天没有看望 {resident_name}（约定每 {interval_days} 天一次），已提醒过志愿者，请跟进。", name=name, days=days, resident_name=pairing.resident_name, interval_days=pairing.interval_days))
            pairing.coordinator_reminded_at = now
            told["coordinator"].append(pairing.id)
        session.add(pairing)
    await session.flush()
    return told


__all__ = [
    "ESCALATE_AFTER",
    "MAX_OPEN_ASSIGNMENTS",
    "OFFER_BATCH",
    "Candidate",
    "NewRequest",
    "RequestError",
    "VisitLine",
    "accept_offer",
    "approve_request",
    "assign_by_hand",
    "can_manage",
    "can_see_details",
    "cancel_request",
    "change_category",
    "confirm_done",
    "create_pairing",
    "create_request",
    "decline_offer",
    "escalate_unaccepted",
    "latest_offer",
    "log_visit",
    "mark_done",
    "notify_station",
    "offer_next",
    "open_offers",
    "parse_visit_line",
    "rank_volunteers",
    "reject_request",
    "remind_missed_visits",
    "requests_of_resident",
    "review_queue",
    "same_area",
    "start_service",
    "station_for",
    "tasks_of_volunteer",
]
