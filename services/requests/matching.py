"""Matching approved requests to volunteers: ranked offers, a race-safe accept, escalation, assigning by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Text, _
from models import Person
from models.membership import Membership
from models.requests import ACTIVE_ASSIGNMENT_STATUSES, RequestOffer, ServiceRequest
from services.notify import notify_person
from services.orgs import descendant_ids
from services.registration import SKILLS
from services.requests.core import (
    MAX_OPEN_ASSIGNMENTS,
    OFFER_BATCH,
    RequestError,
    get_request,
    notify_resident,
    notify_station,
    same_area,
    summary,
)

ESCALATE_AFTER = timedelta(hours=4)  # N: nobody accepted → the station's coordinators are told
SKILL_CATEGORY: dict[str, str] = {skill.code: skill.category for skill in SKILLS}


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
    """Volunteers for this request, best first (see the package doc for the rule)."""
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
    # a member of the request's station (or of a team below it) is of the area, whatever they typed
    station = (await descendant_ids(session, organization_id=request.organization_id)
               if request.organization_id is not None else set())
    members = set(await session.exec(select(Membership.person_id).where(col(Membership.organization_id).in_(station)))) \
        if station else set()
    candidates = []
    for person in people:
        area_fit = person.id in members or same_area(person.area, request.community)
        candidate = Candidate(person=person, skill_fit=skill_fits(person, request.category),
                              area_fit=area_fit, load=loads.get(person.id, 0))
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
            message=_("有一条居民求助需要志愿者：{summary}\n回复「接单 {id}」接受，回复「不接 {id}」婉拒。"
                      "接单后可看到联系方式和地址。", summary=summary(request), id=request.id),
            choices=[(_("接单"), f"take:{request.id}"), (_("不接"), f"decline:{request.id}")],
        )
    if not offers:
        pending = (await session.exec(
            select(func.count()).select_from(RequestOffer)
            .where(RequestOffer.request_id == request.id, RequestOffer.status == "offered")
        )).one()
        if not pending and request.escalated_at is None:
            await _escalate(session, request=request, now=now, why=_("没有合适的志愿者可以推送"))
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
    for offer in offers:
        if offer.volunteer_id == request.assignee_id:
            offer.status = "accepted"
            offer.responded_at = now
        elif offer.status == "offered":
            offer.status = "taken"
            offer.responded_at = now
            await notify_person(session, person_id=offer.volunteer_id, now=now, source="request_offer",
                                message=_("求助 {summary} 已由其他志愿者接单，谢谢你的热心！", summary=summary(request)))
        session.add(offer)
    await session.flush()
    assignee = await session.get(Person, request.assignee_id)
    name: Text = (assignee.name if assignee else None) or _("志愿者")
    await notify_resident(session, request, now=now,
                          message=_("你的求助 {summary} 已派单：志愿者 {name} 会按约定时间联系你。",
                                    summary=summary(request), name=name))


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


async def _escalate(session: AsyncSession, *, request: ServiceRequest, now: datetime, why: Text) -> None:
    await notify_station(
        session, request=request, now=now, urgent=True,
        message=_("求助 {summary} {why}，请手动派单。", summary=summary(request), why=why),
        choices=[(_("手动派单"), f"assign:{request.id}")],
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
    hours = f"{round(after.total_seconds() / 3600, 1):g}"
    for request in rows:
        await _escalate(session, request=request, now=now, why=_("已 {hours} 小时无人接单", hours=hours))
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
    await notify_person(session, person_id=volunteer_id, now=now, source="request", urgent=True,
                        message=_("协调员为你派了一单居民求助：{summary}。发送「我的接单」查看联系方式和地址。",
                                  summary=summary(request)),
                        choices=[(_("查看详情"), f"reqv:{request.id}")])
    return request
