"""The service-hours ledger (台账) and star levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, case, func, literal_column, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, HourRecord, Person, Signup
from models.corrections import HourCorrection
from services.people import PermissionDenied, require_manager
from services.rows import Reads, fetch_rows

# 星级志愿者: cumulative hours for one to five stars
STAR_THRESHOLDS: tuple[int, ...] = (100, 300, 600, 1000, 1500)
# no one serves more than a day in a day: the sum of a person's records on one local date
DAY_LIMIT_HOURS = 24.0


class HoursError(Exception):
    def __init__(self, reason: str, **params: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


# the approved correction of a record, if any (at most one: models/corrections.py), outer-joined where
# records are listed with what they count (recent records, 我的记录, the ledger): a corrected record counts
# its corrected hours, a voided one nothing
IN_EFFECT = HourCorrection.__table__.alias("in_effect")  # type: ignore[attr-defined]
EFFECTIVE_HOURS = case((IN_EFFECT.c.id.is_(None), HourRecord.hours), else_=func.coalesce(IN_EFFECT.c.hours, 0))
NOT_VOIDED = IN_EFFECT.c.id.is_(None) | IN_EFFECT.c.hours.is_not(None)


# the same for sums (totals, star levels, the 24 h day): a scalar subquery per record probes ix_hour_correction_record_status
# (with the join, PostgreSQL hashed the whole correction table to sum one person's 50 records: 4.4 ms, not 0.2)
COUNTED_HOURS = func.coalesce(
    select(func.coalesce(HourCorrection.hours, 0))
    .where(HourCorrection.record_id == HourRecord.id, HourCorrection.status == "approved")
    .correlate(HourRecord).scalar_subquery(),  # type: ignore[arg-type]
    HourRecord.hours)


def with_correction(query: Any) -> Any:
    """``query`` (over ``hour_record``) with the record's correction in effect joined as ``IN_EFFECT``."""
    return query.outerjoin(IN_EFFECT, (IN_EFFECT.c.record_id == HourRecord.id) & (IN_EFFECT.c.status == "approved"))


def not_rejected() -> Any:
    """Approved or still pending: what a person has claimed for a day (a rejected record claims nothing)."""
    return (col(HourRecord.approved) == True) | col(HourRecord.reviewed_at).is_(None)  # noqa: E712


async def check_day_limit(session: AsyncSession, *, person_id: int, served_on: date, hours: float,
                          replacing: int | None = None) -> None:
    """Refuse hours that would take the person past 24 h on that date, across all their records.

    The person's row is locked first (PostgreSQL), so two writes for the same person take turns and
    cannot both pass the check. ``replacing`` is a record being corrected: its old hours do not count.
    """
    await session.exec(select(Person.id).where(Person.id == person_id).with_for_update())
    query = select(func.coalesce(func.sum(COUNTED_HOURS), 0)).where(
        HourRecord.person_id == person_id, HourRecord.served_on == served_on, not_rejected())
    if replacing is not None:
        query = query.where(HourRecord.id != replacing)
    already = float((await session.exec(query)).one())
    if already + hours > DAY_LIMIT_HOURS + 1e-9:
        raise HoursError("day_limit", day=served_on.isoformat(), already=round(already, 2),
                         left=round(max(0.0, DAY_LIMIT_HOURS - already), 2))


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
    if record is not None and await _under_correction(session, record_id=record.id):
        # 办法 Art 12-13: once a correction is asked for or decided, the record changes only through it — an
        # overwrite here would be masked by the approved correction, or silently change what is under review
        raise HoursError("corrected", name=(await session.get(Person, person_id)).name or "")  # type: ignore[union-attr]
    await check_day_limit(session, person_id=person_id, served_on=served_on, hours=hours,
                          replacing=record.id if record is not None else None)
    if record is None:
        record = HourRecord(person_id=person_id, activity_id=activity.id, hours=hours, served_on=served_on,
                            recorded_by=recorded_by, source=source, created_at=now,
                            organization_id=activity.organization_id)
    else:
        record.hours = hours
        record.recorded_by = recorded_by
        record.created_at = now
    session.add(record)
    await session.flush()
    return record


async def _under_correction(session: AsyncSession, *, record_id: int | None) -> bool:
    """Whether a correction of the record is pending or in effect."""
    found = await session.exec(select(HourCorrection.id).where(
        HourCorrection.record_id == record_id, col(HourCorrection.status).in_(("pending", "approved"))).limit(1))
    return found.first() is not None


async def record_hours_for(
    session: AsyncSession,
    *,
    activity: Activity,
    person_ids: list[int],
    hours: float,
    recorded_by: int,
    served_on: date,
    now: datetime,
    admin: bool,
) -> None:
    """A coordinator records the same hours for several attendees: all of them or, at the first refusal
    (not this activity's coordinator any more, over the length, not an attendee, over 24 h that day), none."""
    try:
        await require_manager(session, person_id=recorded_by, admin=admin, organization_id=activity.organization_id)
    except PermissionDenied as error:
        raise HoursError("not_manager") from error
    async with session.begin_nested():
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
    """Signed up, not marked as a no-show on the roster, and no hours yet."""
    recorded = select(HourRecord.person_id).where(HourRecord.activity_id == activity_id)
    rows = await session.exec(
        select(Person)
        .join(Signup, Signup.person_id == Person.id)
        .where(Signup.activity_id == activity_id, Signup.status == "confirmed",
               col(Signup.no_show_at).is_(None),
               Person.id.not_in(recorded))  # type: ignore[union-attr]
        .order_by(Signup.created_at)
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class RecentRecord:
    """One of the newest records in 我的时长, with what it counts (a correction's hours, if one is in effect)."""

    served_on: date
    title: str | None  # the activity's; None for self-reported hours (then ``note`` says what)
    note: str
    source: str
    recorded_by: int | None
    recorder: str | None  # the recorder's name; None if unknown or never registered
    hours: float


@dataclass(frozen=True, slots=True)
class HoursSummary:
    total: float
    this_year: float
    pending: float  # self-reported hours still waiting for a coordinator (not in the totals)
    stars: int
    to_next_star: float | None
    recent: list[RecentRecord]  # newest first; voided records are left out


_APPROVED = (HourRecord.person_id == bindparam("person_id")) & (HourRecord.approved == True)  # noqa: E712
_WAITING = (HourRecord.approved == False) & col(HourRecord.reviewed_at).is_(None)  # noqa: E712


def _served_between(served_on: Any, first: str = "year_start", last: str = "year_end") -> Any:
    """``served_on`` from the bound date ``first`` to ``last`` (inclusive): 我的时长's year, a question's period."""
    return (served_on >= bindparam(first)) & (served_on <= bindparam(last))


# a person's corrections in effect, each beside its record: found by person (ix_hour_correction_person_approved,
# migration 0019), then one primary-key probe of hour_record each. What one changes is its hours (0: voided) less
# the record's. The record's person is deliberately not compared with the correction's (it is the same: the
# migration copied it, services/corrections.py and the model write it, and a record's person never changes):
# PostgreSQL would carry ``person_id = $1`` over to hour_record and probe hour_correction per record again.
# 'approved' is a literal, not a parameter: a generic plan may use the partial index only for a literal. The
# person is ``(SELECT $1)``, a value PostgreSQL learns only when running: its estimate of the person's corrections
# is then the same in a custom plan as in the generic one, so the prepared statement keeps its generic plan
# (with the value, a community whose few corrected volunteers are all in the column's statistics had every
# other volunteer's custom plan estimated cheaper, and the summary planned anew each time: 0.48 → 1.28 ms)
_CORRECTED = HourRecord.__table__.alias("corrected")  # type: ignore[attr-defined]
_CHANGE = func.coalesce(HourCorrection.hours, 0) - _CORRECTED.c.hours
_IN_EFFECT_OF_PERSON = (
    (HourCorrection.person_id == select(bindparam("person_id", type_=Integer)).scalar_subquery())
    & (HourCorrection.status == literal_column("'approved'")))


def _changes(*figures: tuple[str, Any]) -> Any:
    """Per label, the sum of the changes of the person's corrections in effect whose record meets the
    condition (on ``_CORRECTED``'s columns)."""
    return (select(*(func.coalesce(func.sum(case((condition, _CHANGE), else_=0)), 0).label(label)
                     for label, condition in figures))
            .select_from(HourCorrection.__table__.join(  # type: ignore[attr-defined]
                _CORRECTED, _CORRECTED.c.id == HourCorrection.record_id))
            .where(_IN_EFFECT_OF_PERSON)
            .subquery("changes"))


# the three sums: the person's records as recorded (one pass over ix_hour_record_person_served, index-only on
# PostgreSQL), plus what their few corrections in effect change — not a probe of hour_correction per record,
# which made a volunteer with 1,000 records cost 1.2 ms. As before, a correction counts only where its record
# does (services/corrections.py corrects only counted records; the condition keeps the figures the same anyway)
_RECORD_SUMS = select(
    func.coalesce(func.sum(case((HourRecord.approved == True, HourRecord.hours), else_=0)), 0).label("total"),  # noqa: E712
    func.coalesce(func.sum(case((_APPROVED & _served_between(HourRecord.served_on), HourRecord.hours), else_=0)), 0).label("this_year"),
    func.coalesce(func.sum(case((_WAITING, HourRecord.hours), else_=0)), 0).label("pending"),
).where(HourRecord.person_id == bindparam("person_id")).subquery("records")
_SUM_CHANGES = _changes(("total", _CORRECTED.c.approved == True),  # noqa: E712
                        ("this_year", (_CORRECTED.c.approved == True) & _served_between(_CORRECTED.c.served_on)))  # noqa: E712
_HOUR_SUMS = (
    select((_RECORD_SUMS.c.total + _SUM_CHANGES.c.total).label("total"),
           (_RECORD_SUMS.c.this_year + _SUM_CHANGES.c.this_year).label("this_year"),
           _RECORD_SUMS.c.pending)
    .select_from(_RECORD_SUMS.join(_SUM_CHANGES, true()))  # one row each
    .subquery("sums"))
_RECORDER = Person.__table__.alias("recorder")  # type: ignore[attr-defined]
# only columns that ix_hour_record_person_served holds (key or INCLUDE, migration 0017): an index-only scan
_RECENT_HOURS = (
    with_correction(select(HourRecord.id, HourRecord.served_on, Activity.title, HourRecord.note, HourRecord.source,
                           HourRecord.recorded_by, _RECORDER.c.name.label("recorder"),
                           EFFECTIVE_HOURS.label("hours"))
                    .outerjoin(Activity, Activity.id == HourRecord.activity_id))  # type: ignore[arg-type]
    .outerjoin(_RECORDER, _RECORDER.c.id == HourRecord.recorded_by)
    .where(_APPROVED, NOT_VOIDED)
    .order_by(HourRecord.served_on.desc(), HourRecord.id.desc())  # type: ignore[union-attr]
    .limit(bindparam("recent"))
    .subquery("recent")
)
# one statement, one round trip: the one row of sums, beside it the newest records (none: one row of NULLs);
# built once
_SUMMARY = (
    select(_HOUR_SUMS, _RECENT_HOURS.c.served_on, _RECENT_HOURS.c.title, _RECENT_HOURS.c.note, _RECENT_HOURS.c.source,
           _RECENT_HOURS.c.recorded_by, _RECENT_HOURS.c.recorder, _RECENT_HOURS.c.hours)
    .select_from(_HOUR_SUMS.outerjoin(_RECENT_HOURS, true()))
    .order_by(_RECENT_HOURS.c.served_on.desc(), _RECENT_HOURS.c.id.desc())
)


async def hours_summary(session: Reads, *, person_id: int, year: int, recent: int = 5) -> HoursSummary:
    params: dict[str, object] = {"person_id": person_id, "year_start": date(year, 1, 1),
                                 "year_end": date(year, 12, 31), "recent": recent}
    # on the driver, compiled once (asyncpg keeps it prepared per connection and PostgreSQL then reuses its
    # generic plan): at a million volunteers the turn's one statement beyond 帮助, and SQLAlchemy's execution
    # around it cost more CPU than the statement
    rows = await fetch_rows(session, _SUMMARY, params)
    # rounded before the stars: the records plus the corrections' changes may add up to 299.99999999999997
    # where the corrected hours summed to 300
    total, this_year, pending = (round(float(figure), 2) for figure in rows[0][:3])
    stars, to_next = star_level(total)
    return HoursSummary(
        total=total, this_year=this_year, pending=pending, stars=stars,
        to_next_star=to_next,
        recent=[RecentRecord(served_on=served_on, title=title, note=note, source=source, recorded_by=recorded_by,
                             recorder=recorder, hours=float(hours))
                for _total, _year, _pending, served_on, title, note, source, recorded_by, recorder, hours in rows
                if served_on is not None])


# the questions' figures, built once (their SQL compiled once per dialect: services/rows.py): approved hours
# in a period, and the newest approved records of activities whose title contains a word (as ``contains``
# does: a typed % or _ is a wildcard, as it was when the word was a literal)
# (the period's sum as 我的时长's: the records as recorded plus their corrections' changes)
_PERIOD_RECORDS = select(func.coalesce(func.sum(HourRecord.hours), 0).label("hours")).where(
    _APPROVED, _served_between(HourRecord.served_on, "first", "last")).subquery("records")
_PERIOD_CHANGES = _changes(("hours", (_CORRECTED.c.approved == True)  # noqa: E712
                            & _served_between(_CORRECTED.c.served_on, "first", "last")))
_IN_PERIOD = select(_PERIOD_RECORDS.c.hours + _PERIOD_CHANGES.c.hours).select_from(
    _PERIOD_RECORDS.join(_PERIOD_CHANGES, true()))
_FOR_ACTIVITY = (
    select(Activity.title, COUNTED_HOURS, HourRecord.served_on)
    .join(Activity, Activity.id == HourRecord.activity_id)  # type: ignore[arg-type]
    .where(HourRecord.person_id == bindparam("person_id"), HourRecord.approved == True,  # noqa: E712
           col(Activity.title).contains(bindparam("title_part")))
    .order_by(col(HourRecord.served_on).desc()).limit(bindparam("limit")))


async def hours_in_period(session: Reads, *, person_id: int, first: date, last: date) -> float:
    """Approved hours served from ``first`` to ``last`` (inclusive)."""
    rows = await fetch_rows(session, _IN_PERIOD, {"person_id": person_id, "first": first, "last": last})
    return round(float(rows[0][0]), 2)


async def hours_for_activity(session: Reads, *, person_id: int, title_part: str,
                             limit: int = 3) -> list[tuple[str, float, date]]:
    """The person's approved hours for activities whose title contains ``title_part``, newest first."""
    rows = await fetch_rows(session, _FOR_ACTIVITY, {"person_id": person_id, "title_part": title_part,
                                                      "limit": limit})
    return [(title, float(hours), served_on) for title, hours, served_on in rows]
