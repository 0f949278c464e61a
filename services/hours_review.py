"""Hours an auditor trusts: self-reported hours wait for a coordinator of the organization.

Hours recorded by a coordinator or by an activity's check-out count at once. Hours a volunteer
reports about themselves (a pairing visit, a request confirmed by its resident) are written
``approved=False`` with the organization whose coordinators review them; until one approves, they
count in no total, star level or export. A rejected record stays in the table (``reviewed_at`` set,
``approved`` still False) so the decision can be audited, and claims nothing for the 24 h day limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Text, _
from models import HourRecord, Person
from services.hours import HoursError, check_day_limit
from services.notify import notify_person
from services.people import PermissionDenied, managed_organizations, require_manager


async def add_hours(session: AsyncSession, *, person_id: int, hours: float, served_on: date,
                    organization_id: int | None, source: str, note: str, recorded_by: int | None,
                    now: datetime, self_reported: bool = True) -> HourRecord:
    """A ledger line outside activities, pending when self-reported; refused (HoursError "day_limit")
    past 24 h on that day. ``self_reported=False`` only for a coordinator's own confirmation."""
    if hours <= 0:
        raise HoursError("bad_hours")
    await check_day_limit(session, person_id=person_id, served_on=served_on, hours=hours)
    record = HourRecord(person_id=person_id, hours=hours, served_on=served_on, recorded_by=recorded_by,
                        approved=not self_reported, source=source, note=note[:500], organization_id=organization_id,
                        created_at=now)
    session.add(record)
    await session.flush()
    return record


@dataclass(frozen=True, slots=True)
class PendingHours:
    record: HourRecord
    name: str


def _pending() -> object:
    return (HourRecord.approved == False) & col(HourRecord.reviewed_at).is_(None)  # noqa: E712


async def pending_hours(session: AsyncSession, *, reviewer_id: int, admin: bool, limit: int = 10) -> list[PendingHours]:
    """Pending records this person may review, oldest first: their organizations' (all of them for an admin)."""
    query = select(HourRecord, Person.name).join(Person, Person.id == HourRecord.person_id).where(_pending())
    if not admin:
        orgs = [o.id for o in await managed_organizations(session, person_id=reviewer_id, admin=False)]
        query = query.where(col(HourRecord.organization_id).in_(orgs))
    rows = await session.exec(query.order_by(col(HourRecord.id)).limit(limit))
    return [PendingHours(record, name or "?") for record, name in rows]


async def reviewable_record(session: AsyncSession, *, record_id: int, reviewer_id: int, admin: bool,
                            lock: bool = False) -> HourRecord:
    """A record this person may review; HoursError "not_found" or "not_manager" (the reviewer does not
    coordinate the record's organization; a record of no organization is for admins)."""
    query = select(HourRecord).where(HourRecord.id == record_id)
    record = (await session.exec(query.with_for_update() if lock else query)).first()
    if record is None:
        raise HoursError("not_found")
    if not admin:
        if record.organization_id is None:
            raise HoursError("not_manager")
        try:
            await require_manager(session, person_id=reviewer_id, admin=False, organization_id=record.organization_id)
        except PermissionDenied as error:
            raise HoursError("not_manager") from error
    return record


async def review_hours(session: AsyncSession, *, record_id: int, reviewer_id: int, admin: bool, approve: bool,
                       now: datetime) -> HourRecord:
    """Approve or reject one pending record and tell its volunteer.

    Raises HoursError "not_found", "not_manager" (see :func:`reviewable_record`) or "already_reviewed"."""
    record = await reviewable_record(session, record_id=record_id, reviewer_id=reviewer_id, admin=admin, lock=True)
    if record.approved or record.reviewed_at is not None:
        raise HoursError("already_reviewed")
    record.approved = approve
    record.reviewed_by = reviewer_id
    record.reviewed_at = now
    session.add(record)
    await session.flush()
    hours, day = f"{record.hours:g}", record.served_on.isoformat()
    message: Text = (_("你 {day} 的 {hours} 小时志愿时长已通过审核，已计入累计时长。", day=day, hours=hours) if approve
                     else _("你 {day} 的 {hours} 小时志愿时长未通过审核，没有计入时长。如有疑问请联系协调员。",
                            day=day, hours=hours))
    await notify_person(session, person_id=record.person_id, now=now, source="hours", message=message)
    return record
