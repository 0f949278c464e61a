"""Corrections of hour records: a volunteer asks, a coordinator of the record's organization decides;
a coordinator may also correct or void a record directly (approved at once, decided by them).

The original record is kept (models/corrections.py); what counts is the approved correction's hours
(``services.hours.EFFECTIVE_HOURS``). Refusals are :class:`HoursError` with a reason:
"not_found", "not_yours", "not_counted" (rejected or still pending review), "voided" (nothing left to
correct), "same_hours", "bad_hours", "already_pending", "not_manager", "already_decided", "day_limit",
"own_record" (a coordinator does not decide or make a correction of their own hours; an admin may).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Text, _
from models import Activity, HourRecord, Person
from models.corrections import REASON_MAX, HourCorrection
from services.hours import (
    DAY_LIMIT_HOURS,
    EFFECTIVE_HOURS,
    IN_EFFECT,
    HoursError,
    check_day_limit,
    with_correction,
)
from services.notify import notify_person
from services.people import PermissionDenied, managed_organizations, require_manager
from services.requests.core import station_coordinators

REASON_MIN = 2


@dataclass(frozen=True, slots=True)
class RecordLine:
    """One hour record as a list shows it: what it counts now, and whether a correction waits."""

    record: HourRecord
    title: str | None
    hours: float  # what it counts (the correction in effect, 0 when voided)
    corrected: bool  # a correction is in effect
    voided: bool
    pending: bool  # a correction of it waits for a coordinator
    name: str = ""  # the volunteer's name (coordinators' lists)


_PENDING = sa.exists().where(HourCorrection.record_id == HourRecord.id, HourCorrection.status == "pending")


def _lines_query() -> sa.Select:
    return with_correction(
        select(HourRecord, Activity.title, EFFECTIVE_HOURS, IN_EFFECT.c.id, IN_EFFECT.c.hours, _PENDING, Person.name)
        .join(Person, Person.id == HourRecord.person_id)
        .outerjoin(Activity, Activity.id == HourRecord.activity_id)  # type: ignore[arg-type]
    ).where(HourRecord.approved == True)  # noqa: E712 - only counted records can be corrected


def _line(row: tuple) -> RecordLine:
    record, title, hours, correction_id, correction_hours, pending, name = row
    return RecordLine(record=record, title=title, hours=float(hours), corrected=correction_id is not None,
                      voided=correction_id is not None and correction_hours is None, pending=bool(pending),
                      name=name or "?")


async def record_lines(session: AsyncSession, *, person_id: int | None = None, activity_id: int | None = None,
                       served_on: date | None = None, name: str | None = None,
                       organization_ids: list[int] | None = None, limit: int = 10) -> list[RecordLine]:
    """Counted records (one statement), newest first: a person's (on one day), an activity's, or those of
    volunteers of this name within these organizations (a record's own, or its activity's)."""
    query = _lines_query()
    if person_id is not None:
        query = query.where(HourRecord.person_id == person_id)
    if name is not None:
        query = query.where(Person.name == name)
    if organization_ids is not None:
        owner = sa.func.coalesce(HourRecord.organization_id, Activity.organization_id)
        query = query.where(owner.in_(organization_ids))
    if activity_id is not None:
        query = query.where(HourRecord.activity_id == activity_id)
    if served_on is not None:
        query = query.where(HourRecord.served_on == served_on)
    order = (col(HourRecord.served_on).desc(), col(HourRecord.id).desc())
    rows = await session.exec(query.order_by(*order).limit(limit))
    return [_line(row) for row in rows]


async def record_line(session: AsyncSession, *, record_id: int) -> RecordLine | None:
    row = (await session.exec(_lines_query().where(HourRecord.id == record_id))).first()
    return _line(row) if row is not None else None


def check_hours(hours: float | None) -> None:
    """New hours: more than 0, at most a day (None voids the record)."""
    if hours is not None and not 0 < hours <= DAY_LIMIT_HOURS:
        raise HoursError("bad_hours")


async def _organization_of(session: AsyncSession, record: HourRecord) -> int | None:
    if record.organization_id is not None or record.activity_id is None:
        return record.organization_id
    activity = await session.get(Activity, record.activity_id)
    return activity.organization_id if activity is not None else None


async def _locked_record(session: AsyncSession, record_id: int) -> HourRecord:
    record = (await session.exec(select(HourRecord).where(HourRecord.id == record_id).with_for_update())).first()
    if record is None:
        raise HoursError("not_found")
    return record


async def _check_change(session: AsyncSession, *, record: HourRecord, hours: float | None) -> RecordLine:
    """The record as it counts now, refusing a change that changes nothing or passes 24 h that day."""
    check_hours(hours)
    assert record.id is not None
    line = await record_line(session, record_id=record.id)
    if line is None:
        raise HoursError("not_counted")
    if line.voided and hours is None:
        raise HoursError("voided")
    if hours is not None and not line.voided and abs(line.hours - hours) < 1e-9:
        raise HoursError("same_hours", hours=hours)
    if hours is not None:
        await check_day_limit(session, person_id=record.person_id, served_on=record.served_on, hours=hours,
                              replacing=record.id)
    return line


def _day(record: HourRecord) -> str:
    return record.served_on.isoformat()


def _hours(value: float | None) -> str:
    return f"{value:g}" if value is not None else "0"


async def manageable_record(session: AsyncSession, *, record_id: int, person_id: int, admin: bool) -> RecordLine:
    """A counted record of an organization this person coordinates (HoursError "not_found" / "not_manager")."""
    line = await record_line(session, record_id=record_id)
    if line is None:
        raise HoursError("not_found")
    await _require_manager_of(session, organization_id=await _organization_of(session, line.record),
                              person_id=person_id, admin=admin)
    if line.record.person_id == person_id and not admin:
        raise HoursError("own_record")
    return line


async def request_correction(session: AsyncSession, *, record_id: int, person_id: int, hours: float | None,
                             reason: str, now: datetime) -> HourCorrection:
    """A volunteer asks to correct one of their own counted records; its organization's coordinators
    (the admins when it has none) get a notice with 批准 / 驳回."""
    record = await _locked_record(session, record_id)
    if record.person_id != person_id:
        raise HoursError("not_yours")
    line = await _check_change(session, record=record, hours=hours)
    if line.pending:
        raise HoursError("already_pending")
    correction = HourCorrection(record_id=record_id, person_id=record.person_id,
                                organization_id=await _organization_of(session, record), old_hours=line.hours,
                                hours=hours, reason=reason[:REASON_MAX], requested_by=person_id, requested_at=now)
    session.add(correction)
    await session.flush()
    person = await session.get(Person, person_id)
    name = (person.name if person else None) or "?"
    what = line.title or record.note or ""
    message: Text = (
        _("{name} 申请更正 {day}「{what}」的时长：{old} → {new} 小时。原因：{reason}", name=name, day=_day(record),
          what=what, old=_hours(line.hours), new=_hours(hours), reason=correction.reason) if hours is not None
        else _("{name} 申请作废 {day}「{what}」的 {old} 小时记录。原因：{reason}", name=name, day=_day(record),
               what=what, old=_hours(line.hours), reason=correction.reason))
    for coordinator in await station_coordinators(session, organization_id=correction.organization_id):
        await notify_person(session, person_id=coordinator, now=now, source="correction", message=message,
                            choices=[(_("批准"), f"corrok:{correction.id}"), (_("驳回"), f"corrno:{correction.id}")])
    return correction


async def _require_manager_of(session: AsyncSession, *, organization_id: int | None, person_id: int,
                              admin: bool) -> None:
    if admin:
        return
    if organization_id is None:
        raise HoursError("not_manager")
    try:
        await require_manager(session, person_id=person_id, admin=False, organization_id=organization_id)
    except PermissionDenied as error:
        raise HoursError("not_manager") from error


async def _put_in_effect(session: AsyncSession, correction: HourCorrection) -> None:
    """The correction becomes the one in effect: an earlier approved one of the record is superseded."""
    earlier = await session.exec(select(HourCorrection).where(HourCorrection.record_id == correction.record_id,
                                                              HourCorrection.status == "approved"))
    for row in earlier:
        row.status = "superseded"
        session.add(row)
    correction.status = "approved"
    session.add(correction)
    await session.flush()


async def decidable_correction(session: AsyncSession, *, correction_id: int, decider_id: int, admin: bool,
                               lock: bool = False) -> HourCorrection:
    query = select(HourCorrection).where(HourCorrection.id == correction_id)
    correction = (await session.exec(query.with_for_update() if lock else query)).first()
    if correction is None:
        raise HoursError("not_found")
    await _require_manager_of(session, organization_id=correction.organization_id, person_id=decider_id, admin=admin)
    return correction


async def decide_correction(session: AsyncSession, *, correction_id: int, decider_id: int, admin: bool,
                            approve: bool, note: str, now: datetime) -> HourCorrection:
    """Approve or reject a pending correction (a coordinator of the record's organization, or an admin)
    and tell the volunteer. An approval is checked against the day's 24 h again."""
    correction = await decidable_correction(session, correction_id=correction_id, decider_id=decider_id,
                                            admin=admin, lock=True)
    if correction.status != "pending":
        raise HoursError("already_decided")
    if correction.requested_by == decider_id and not admin:
        raise HoursError("own_record")
    record = await _locked_record(session, correction.record_id)
    if approve and correction.hours is not None:
        await check_day_limit(session, person_id=record.person_id, served_on=record.served_on,
                              hours=correction.hours, replacing=record.id)
    correction.decided_by, correction.decided_at = decider_id, now
    correction.decision_note = note[:REASON_MAX]
    if approve:
        await _put_in_effect(session, correction)
        message: Text = _("你申请的更正已批准：{day} 的记录现在计 {hours} 小时。", day=_day(record),
                          hours=_hours(correction.hours))
    else:
        correction.status = "rejected"
        session.add(correction)
        await session.flush()
        message = _("你申请的更正（{day} 的记录）未获批准，原因：{note}", day=_day(record), note=correction.decision_note)
    await notify_person(session, person_id=record.person_id, now=now, source="correction", message=message)
    return correction


async def correct_directly(session: AsyncSession, *, record_id: int, coordinator_id: int, admin: bool,
                           hours: float | None, reason: str, now: datetime) -> HourCorrection:
    """A coordinator of the record's organization corrects (or, with ``hours=None``, voids) it: recorded
    as a correction approved at once, and the volunteer is told."""
    record = await _locked_record(session, record_id)
    organization_id = await _organization_of(session, record)
    await _require_manager_of(session, organization_id=organization_id, person_id=coordinator_id, admin=admin)
    if record.person_id == coordinator_id and not admin:
        raise HoursError("own_record")
    line = await _check_change(session, record=record, hours=hours)
    # the record's person, not the coordinator: whose sums it changes (ix_hour_correction_person_approved)
    correction = HourCorrection(record_id=record_id, person_id=record.person_id, organization_id=organization_id,
                                old_hours=line.hours, hours=hours, reason=reason[:REASON_MAX],
                                requested_by=coordinator_id, requested_at=now, decided_by=coordinator_id,
                                decided_at=now)
    await _put_in_effect(session, correction)
    message: Text = (
        _("协调员更正了你 {day} 的志愿时长：{old} → {new} 小时。原因：{reason}", day=_day(record),
          old=_hours(line.hours), new=_hours(hours), reason=correction.reason) if hours is not None
        else _("协调员作废了你 {day} 的 {old} 小时记录。原因：{reason}", day=_day(record), old=_hours(line.hours),
               reason=correction.reason))
    await notify_person(session, person_id=record.person_id, now=now, source="correction", message=message)
    return correction


@dataclass(frozen=True, slots=True)
class PendingCorrection:
    correction: HourCorrection
    name: str
    served_on: date
    what: str


async def pending_corrections(session: AsyncSession, *, reviewer_id: int, admin: bool,
                              limit: int = 10) -> list[PendingCorrection]:
    """Pending corrections this person may decide, oldest first (their organizations'; every one for an admin)."""
    query = (select(HourCorrection, Person.name, HourRecord.served_on, Activity.title, HourRecord.note)
             .join(HourRecord, HourRecord.id == HourCorrection.record_id)
             .join(Person, Person.id == HourRecord.person_id)
             .outerjoin(Activity, Activity.id == HourRecord.activity_id)  # type: ignore[arg-type]
             .where(HourCorrection.status == "pending"))
    if not admin:
        orgs = [o.id for o in await managed_organizations(session, person_id=reviewer_id, admin=False)]
        query = query.where(col(HourCorrection.organization_id).in_(orgs))
    rows = await session.exec(query.order_by(col(HourCorrection.id)).limit(limit))
    return [PendingCorrection(c, name or "?", served_on, title or note or "") for c, name, served_on, title, note in rows]


async def pending_correction(session: AsyncSession, *, correction_id: int, reviewer_id: int,
                             admin: bool) -> PendingCorrection:
    """One correction to show to a coordinator who may decide it (HoursError "not_found" / "not_manager")."""
    correction = await decidable_correction(session, correction_id=correction_id, decider_id=reviewer_id, admin=admin)
    line = await record_line(session, record_id=correction.record_id)
    if line is None:
        raise HoursError("not_found")
    return PendingCorrection(correction, line.name, line.record.served_on, line.title or line.record.note)
