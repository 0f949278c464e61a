"""The service-hours ledger (台账) and star levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, HourRecord, Person, Signup

# 星级志愿者: cumulative hours for one to five stars
STAR_THRESHOLDS: tuple[int, ...] = (100, 300, 600, 1000, 1500)


class HoursError(Exception):
    def __init__(self, reason: str, **params: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


def activity_length_hours(activity: Activity) -> float:
    return round((activity.end_at - activity.start_at).total_seconds() / 3600, 2)


def star_level(total: float) -> tuple[int, float | None]:
    """Current stars and the hours still missing for the next star (None at five stars)."""
    stars = sum(1 for threshold in STAR_THRESHOLDS if total >= threshold)
    if stars == len(STAR_THRESHOLDS):
        return stars, None
    return stars, round(STAR_THRESHOLDS[stars] - total, 2)


async def record_activity_hours(
    session: AsyncSession,
    *,
    activity: Activity,
    person_id: int,
    hours: float,
    recorded_by: int | None,
    served_on: date,
    now: datetime,
    source: str = "activity",
) -> HourRecord:
    """Record (or correct) one attendee's hours for an activity; one ledger line per person and activity."""
    limit = activity_length_hours(activity)
    if hours <= 0 or hours > limit:
        raise HoursError("over_length", limit=limit)
    signup = (
        await session.exec(
            select(Signup).where(
                Signup.activity_id == activity.id, Signup.person_id == person_id, Signup.status == "confirmed"
            )
        )
    ).first()
    if signup is None:
        raise HoursError("not_attendee")
    record = (
        await session.exec(
            select(HourRecord).where(HourRecord.activity_id == activity.id, HourRecord.person_id == person_id)
        )
    ).first()
    if record is None:
        record = HourRecord(person_id=person_id, activity_id=activity.id, hours=hours, served_on=served_on,
                            recorded_by=recorded_by, source=source, created_at=now)
    else:
        record.hours = hours
        record.recorded_by = recorded_by
        record.created_at = now
    session.add(record)
    await session.flush()
    return record


async def record_hours_for(
    session: AsyncSession,
    *,
    activity: Activity,
    person_ids: list[int],
    hours: float,
    recorded_by: int | None,
    served_on: date,
    now: datetime,
) -> None:
    """The same hours for several attendees; the first refusal (over the length, not an attendee) stops it."""
    for person_id in person_ids:
        await record_activity_hours(session, activity=activity, person_id=person_id, hours=hours,
                                    recorded_by=recorded_by, served_on=served_on, now=now)


async def recent_started_activities(session: AsyncSession, *, organization_ids: list[int], now: datetime,
                                    days: int = 60, limit: int = 10) -> list[Activity]:
    """Open activities of these organizations that began in the last ``days`` days, newest first."""
    rows = await session.exec(
        select(Activity)
        .where(col(Activity.organization_id).in_(organization_ids), Activity.start_at <= now,
               Activity.start_at >= now - timedelta(days=days), Activity.status == "open")
        .order_by(col(Activity.start_at).desc()).limit(limit)
    )
    return list(rows)


async def attendees_without_hours(session: AsyncSession, *, activity_id: int) -> list[Person]:
    recorded = select(HourRecord.person_id).where(HourRecord.activity_id == activity_id)
    rows = await session.exec(
        select(Person)
        .join(Signup, Signup.person_id == Person.id)
        .where(Signup.activity_id == activity_id, Signup.status == "confirmed",
               Person.id.not_in(recorded))  # type: ignore[union-attr]
        .order_by(Signup.created_at)
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class HoursSummary:
    total: float
    this_year: float
    stars: int
    to_next_star: float | None
    recent: list[tuple[HourRecord, str | None, str | None]]  # record, activity title, recorder name


async def hours_summary(session: AsyncSession, *, person_id: int, year: int, recent: int = 5) -> HoursSummary:
    approved = (HourRecord.person_id == person_id) & (HourRecord.approved == True)  # noqa: E712
    # both sums in one statement over the person's rows (ix_hour_record_person_served): one round trip
    in_year = (HourRecord.served_on >= date(year, 1, 1)) & (HourRecord.served_on <= date(year, 12, 31))
    total_sum, year_sum = (await session.exec(
        select(func.coalesce(func.sum(HourRecord.hours), 0),
               func.coalesce(func.sum(case((in_year, HourRecord.hours), else_=0)), 0)).where(approved)
    )).one()
    total, this_year = float(total_sum), float(year_sum)
    recorder = Person.__table__.alias("recorder")
    rows = await session.exec(
        select(HourRecord, Activity.title, recorder.c.name)
        .outerjoin(Activity, Activity.id == HourRecord.activity_id)
        .outerjoin(recorder, recorder.c.id == HourRecord.recorded_by)
        .where(approved)
        .order_by(HourRecord.served_on.desc(), HourRecord.id.desc())  # type: ignore[union-attr]
        .limit(recent)
    )
    stars, to_next = star_level(total)
    return HoursSummary(total=round(total, 2), this_year=round(this_year, 2), stars=stars, to_next_star=to_next,
                        recent=[(r, title, name) for r, title, name in rows])
