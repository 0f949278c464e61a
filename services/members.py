"""The coordinators' volunteer list: the members of the organizations they manage, one page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, HourRecord, Organization, Person, Signup
from models.membership import Membership
from services.hours import COUNTED_HOURS


def members_and_participants(organization_ids: list[int]) -> sa.CompoundSelect:
    """person_id of the organizations' members and of everyone who signed up for or served in one of their
    activities: who an organization's volunteers are, for broadcasts and the web console alike."""
    org_activities = sa.select(col(Activity.id)).where(col(Activity.organization_id).in_(organization_ids))
    signed_up = sa.select(col(Signup.person_id)).where(col(Signup.activity_id).in_(org_activities))
    served = sa.select(col(HourRecord.person_id)).where(col(HourRecord.activity_id).in_(org_activities))
    members = sa.select(col(Membership.person_id)).where(col(Membership.organization_id).in_(organization_ids))
    return sa.union(signed_up, served, members)


@dataclass(frozen=True, slots=True)
class VolunteerRow:
    person_id: int
    name: str
    phone_masked: str | None  # never the plain number: only the mask stored at registration
    skills: list[str]
    organization: str
    hours_this_year: float  # approved hours served since ``year_start``
    last_activity: str | None  # the title of the latest activity they signed up for that has begun
    last_activity_at: datetime | None


async def volunteer_page(session: AsyncSession, *, organization_ids: list[int] | None, year_start: date,
                         now: datetime, offset: int, limit: int) -> tuple[list[VolunteerRow], int]:
    """One page of the active members of ``organization_ids`` (None: every organization, for an admin),
    by name, and how many there are in all."""
    where = [col(Person.status) == "active"]
    if organization_ids is not None:
        where.append(col(Membership.organization_id).in_(organization_ids))
    base = (select(Person, Organization.name).join(Membership, col(Membership.person_id) == col(Person.id))
            .join(Organization, col(Organization.id) == col(Membership.organization_id)).where(*where))
    total = (await session.exec(
        sa.select(sa.func.count()).select_from(Person).join(Membership, col(Membership.person_id) == col(Person.id))
        .where(*where))).scalar_one()
    rows = list(await session.exec(base.order_by(col(Person.name), col(Person.id)).offset(offset).limit(limit)))
    ids = [person.id for person, _name in rows if person.id is not None]
    if not ids:
        return [], int(total)
    hours = {int(pid): float(h or 0) for pid, h in await session.exec(
        select(HourRecord.person_id, sa.func.sum(COUNTED_HOURS))
        .where(col(HourRecord.person_id).in_(ids), col(HourRecord.approved) == sa.true(),
               col(HourRecord.served_on) >= year_start)
        .group_by(col(HourRecord.person_id)))}
    last: dict[int, tuple[str, datetime]] = {}
    for pid, title, start_at in await session.exec(
            select(Signup.person_id, Activity.title, Activity.start_at)
            .join(Activity, col(Activity.id) == col(Signup.activity_id))
            .where(col(Signup.person_id).in_(ids), col(Signup.status) != "cancelled", col(Activity.start_at) <= now)
            .order_by(col(Activity.start_at).desc())):
        last.setdefault(int(pid), (title, start_at))
    page = []
    for person, org_name in rows:
        assert person.id is not None
        title, at = last.get(person.id, (None, None))
        page.append(VolunteerRow(
            person_id=person.id, name=person.name or "?", phone_masked=person.phone_masked,
            skills=[c for c in person.skills.split(",") if c], organization=org_name,
            hours_this_year=hours.get(person.id, 0.0), last_activity=title, last_activity_at=at))
    return page, int(total)
