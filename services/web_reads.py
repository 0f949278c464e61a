"""Read-only figures and pages of the web console, limited to the organizations a person manages.

Who manages what is decided by ``services.people.managed_organizations`` (as in the chat); these
functions take the resulting organization ids (a subtree: a center's include its stations'). An
organization's volunteers are its members and its activities' past participants
(``services.members.members_and_participants``, the definition broadcasts reach).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, HourRecord, Organization, Person, Signup
from models.corrections import HourCorrection
from models.membership import Membership
from models.requests import OPEN_STATUSES, ServiceRequest
from services.hours import COUNTED_HOURS, STAR_THRESHOLDS, star_level
from services.members import members_and_participants


def volunteer_ids(organization_ids: list[int]) -> Any:
    """person_id of every registered volunteer of these organizations (a subquery)."""
    return sa.select(col(Person.id)).where(col(Person.status) == "active",
                                           col(Person.id).in_(members_and_participants(organization_ids)))


async def hours_per_month(session: AsyncSession, *, organization_ids: list[int], first: date,
                          last: date) -> dict[tuple[int, int], float]:
    """Approved hours of the organizations' records by (year, month) between two dates (inclusive).

    Summed per day in SQL (at most 366 groups, no date function: the same on SQLite and PostgreSQL),
    per month here."""
    rows = await session.exec(  # type: ignore[call-overload]
        sa.select(col(HourRecord.served_on), sa.func.sum(COUNTED_HOURS))
        .where(col(HourRecord.organization_id).in_(organization_ids), col(HourRecord.approved) == sa.true(),
               col(HourRecord.served_on) >= first, col(HourRecord.served_on) <= last)
        .group_by(col(HourRecord.served_on)))
    months: dict[tuple[int, int], float] = {}
    for day, hours in rows:
        key = (day.year, day.month)
        months[key] = months.get(key, 0.0) + float(hours or 0)
    return {key: round(value, 2) for key, value in months.items()}


@dataclass(frozen=True, slots=True)
class VolunteerRow:
    person: Person
    total: float
    this_year: float
    stars: int
    organization: str = ""  # the organization they are a member of ("" for a past participant only)


SORTS = {"name": "name", "total": "total", "year": "this_year", "stars": "total"}


async def volunteer_rows(session: AsyncSession, *, organization_ids: list[int], year: int,
                         sort: str = "total", descending: bool = True, offset: int = 0,
                         limit: int = 50) -> tuple[list[VolunteerRow], int]:
    """The organizations' volunteers with their approved hours (all time, and this year), one page."""
    people = volunteer_ids(organization_ids).subquery()
    in_year = (col(HourRecord.served_on) >= date(year, 1, 1)) & (col(HourRecord.served_on) <= date(year, 12, 31))
    approved = col(HourRecord.approved) == sa.true()
    total = sa.func.coalesce(sa.func.sum(sa.case((approved, COUNTED_HOURS), else_=0)), 0).label("total")
    this_year = sa.func.coalesce(sa.func.sum(sa.case((approved & in_year, COUNTED_HOURS), else_=0)), 0).label("this_year")
    query = (sa.select(Person, total, this_year, Organization.name).join(people, people.c.id == col(Person.id))
             .outerjoin(HourRecord, col(HourRecord.person_id) == col(Person.id))
             .outerjoin(Membership, col(Membership.person_id) == col(Person.id))
             .outerjoin(Organization, col(Organization.id) == col(Membership.organization_id))
             .group_by(col(Person.id), col(Organization.name)))
    key = {"name": col(Person.name), "total": total, "this_year": this_year}[SORTS.get(sort, "total")]
    order = [key.desc() if descending else key.asc(), col(Person.id)]
    count = (await session.exec(sa.select(sa.func.count()).select_from(people))).one()  # type: ignore[call-overload]
    rows = await session.exec(query.order_by(*order).offset(offset).limit(limit))  # type: ignore[call-overload]
    return [VolunteerRow(person, round(float(t), 2), round(float(y), 2), star_level(float(t))[0], org or "")
            for person, t, y, org in rows], int(count[0] if isinstance(count, tuple | sa.Row) else count)


async def volunteers_by_stars(session: AsyncSession, *, organization_ids: list[int]) -> list[int]:
    """How many of the organizations' volunteers hold 0, 1, … 5 stars (by all their approved hours)."""
    people = volunteer_ids(organization_ids).subquery()
    totals = (sa.select(sa.func.coalesce(sa.func.sum(COUNTED_HOURS), 0))
              .select_from(people)
              .outerjoin(HourRecord, (col(HourRecord.person_id) == people.c.id) & (col(HourRecord.approved) == sa.true()))
              .group_by(people.c.id))
    counts = [0] * (len(STAR_THRESHOLDS) + 1)
    for (total,) in await session.exec(totals):  # type: ignore[call-overload]
        counts[star_level(float(total))[0]] += 1
    return counts


def _of(organization_ids: list[int] | None) -> Any:
    """Requests of these stations; ``None`` (an admin): every request, those of no station too."""
    return sa.true() if organization_ids is None else col(ServiceRequest.organization_id).in_(organization_ids)


async def requests_by_category(session: AsyncSession, *, organization_ids: list[int] | None) -> dict[str, int]:
    rows = await session.exec(  # type: ignore[call-overload]
        sa.select(col(ServiceRequest.category), sa.func.count())
        .where(_of(organization_ids)).group_by(col(ServiceRequest.category)))
    return {category: int(n) for category, n in rows}


async def open_requests(session: AsyncSession, *, organization_ids: list[int] | None, status: str | None = None,
                        offset: int = 0, limit: int = 20) -> tuple[list[ServiceRequest], int]:
    """The organizations' requests still open (or of one status), oldest first, one page."""
    statuses = (status,) if status else OPEN_STATUSES
    query = select(ServiceRequest).where(_of(organization_ids), col(ServiceRequest.status).in_(statuses))
    total = (await session.exec(select(sa.func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(query.order_by(col(ServiceRequest.created_at), col(ServiceRequest.id))
                              .offset(offset).limit(limit))
    return list(rows), int(total)


async def activities_page(session: AsyncSession, *, organization_ids: list[int], when: str, query_text: str,
                          now: Any, descending: bool, offset: int, limit: int,
                          category: str = "") -> tuple[list[tuple[Activity, int]], int]:
    """The organizations' activities ("upcoming" not over yet, "past", or "all"), each with its confirmed count."""
    query = select(Activity).where(col(Activity.organization_id).in_(organization_ids))
    if category:
        query = query.where(col(Activity.category) == category)
    if when == "upcoming":
        query = query.where(col(Activity.end_at) > now)
    elif when == "past":
        query = query.where(col(Activity.end_at) <= now)
    if query_text:
        query = query.where(col(Activity.title).contains(query_text) | col(Activity.place).contains(query_text))
    total = (await session.exec(select(sa.func.count()).select_from(query.subquery()))).one()
    order = col(Activity.start_at).desc() if descending else col(Activity.start_at).asc()
    activities = list(await session.exec(query.order_by(order, col(Activity.id)).offset(offset).limit(limit)))
    counts: dict[int, int] = {}
    if activities:
        rows = await session.exec(  # type: ignore[call-overload]
            sa.select(col(Signup.activity_id), sa.func.count())
            .where(col(Signup.activity_id).in_([a.id for a in activities]), col(Signup.status) == "confirmed")
            .group_by(col(Signup.activity_id)))
        counts = {activity_id: int(n) for activity_id, n in rows}
    return [(a, counts.get(a.id or 0, 0)) for a in activities], int(total)


async def pending_hours_count(session: AsyncSession, *, organization_ids: list[int] | None) -> int:
    """Self-reported records waiting for review (``None``, an admin: all of them, of no organization too)."""
    query = sa.select(sa.func.count()).select_from(HourRecord).where(
        col(HourRecord.approved) == sa.false(), col(HourRecord.reviewed_at).is_(None))
    if organization_ids is not None:
        query = query.where(col(HourRecord.organization_id).in_(organization_ids))
    return int((await session.exec(query)).one()[0])  # type: ignore[call-overload]


async def pending_corrections_count(session: AsyncSession, *, organization_ids: list[int] | None) -> int:
    """Corrections waiting for a coordinator (``None``, an admin: all of them)."""
    query = sa.select(sa.func.count()).select_from(HourCorrection).where(col(HourCorrection.status) == "pending")
    if organization_ids is not None:
        query = query.where(col(HourCorrection.organization_id).in_(organization_ids))
    return int((await session.exec(query)).one()[0])  # type: ignore[call-overload]


async def roster_hours(session: AsyncSession, *, activity_id: int) -> dict[int, float]:
    """The hours each person has recorded for the activity, as they count (an approved correction in effect)."""
    rows = await session.exec(
        select(HourRecord.person_id, sa.func.sum(COUNTED_HOURS))
        .where(HourRecord.activity_id == activity_id).group_by(HourRecord.person_id))
    return {person_id: float(hours or 0) for person_id, hours in rows}
