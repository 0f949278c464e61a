"""Activities, sign-ups, the waitlist and rosters."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import _
from models import Activity, ActivityBase, HourRecord, Organization, Person, Signup
from services.hours import COUNTED_HOURS
from services.notify import notify_person
from services.rows import Reads, fetch_rows


class ActivityError(Exception):
    """A sign-up rule was broken; ``reason`` is a stable code the dialog explains."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JoinResult:
    signup: Signup
    waitlisted: bool
    position: int  # place on the waitlist (1-based), 0 when confirmed


@dataclass(frozen=True, slots=True)
class CancelResult:
    signup: Signup
    promoted: Signup | None


async def create_activity(session: AsyncSession, *, data: ActivityBase, created_by: int | None,
                          now: datetime) -> Activity:
    if data.end_at <= data.start_at:
        raise ActivityError("end_before_start")
    activity = Activity.model_validate(data, update={"created_by": created_by, "created_at": now,
                                                     "checkin_code": secrets.token_urlsafe(9)})
    session.add(activity)
    await session.flush()
    return activity


def _upcoming_statements(*, by_organization: bool) -> tuple[Any, Any]:
    """(the count, the page) of open activities not yet over; built once, the values bound per call."""
    query = select(Activity).where(Activity.status == "open", Activity.end_at > bindparam("now"))
    if by_organization:
        query = query.where(col(Activity.organization_id).in_(bindparam("organization_ids", expanding=True)))
    count = select(func.count()).select_from(query.subquery())
    page = query.order_by(Activity.start_at, Activity.id).offset(bindparam("offset")).limit(bindparam("limit"))
    return count, page


# the statements and their cache keys are not rebuilt on every call (the dashboard, announcements, nearby)
_UPCOMING = _upcoming_statements(by_organization=False)
_UPCOMING_BY_ORGANIZATION = _upcoming_statements(by_organization=True)


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """What a search narrows the upcoming activities to; every part optional."""

    category: str | None = None
    window_start: datetime | None = None  # activities overlapping [window_start, window_end), UTC
    window_end: datetime | None = None
    area: str | None = None  # part of the place or of the organization's name


async def list_upcoming(session: AsyncSession, *, now: datetime, offset: int, limit: int,
                        organization_ids: list[int] | None = None) -> tuple[list[Activity], int]:
    """Open activities not yet over, as entities (for callers that need more than a list line: the
    dashboard, announcements, nearby); the lists of 活动 and of a search use :func:`upcoming_lines`."""
    params: dict[str, Any] = {"now": now, "offset": offset, "limit": limit}
    if organization_ids is None:
        count, page = _UPCOMING
    else:
        count, page = _UPCOMING_BY_ORGANIZATION
        params["organization_ids"] = list(organization_ids)
    total = (await session.exec(count, params=params)).one()
    rows = await session.exec(page, params=params)
    return list(rows), int(total)


@dataclass(frozen=True, slots=True)
class ActivityLine:
    """What a list of activities shows of one (its line and its button): read as a row, no entity."""

    id: int
    title: str
    start_at: datetime
    end_at: datetime
    place: str


def _like_contains(value: str) -> str:
    """``value`` as a LIKE pattern for "contains", escaped as ``contains(autoescape=True)`` does (with ``/``):
    a typed ``%`` or ``_`` matches itself. The pattern is a parameter, so the statement stays the same."""
    return "%" + value.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


# an organization or a place containing the area: as bound parameters, so each statement is built once
_ORGANIZATION_IN_AREA = col(Organization.name).like(bindparam("area_like"), escape="/")
_PLACE_IN_AREA = col(Activity.place).like(bindparam("area_like"), escape="/")
# one statement, one round trip: does some organization or some place contain the word?
_AREA_KNOWN = select(exists().where(_ORGANIZATION_IN_AREA) | exists().where(_PLACE_IN_AREA))


@cache
def _line_statements(category: bool, window_start: bool, window_end: bool, area: bool) -> tuple[Any, Any]:
    """(the page with the total beside each row, the count alone) of open activities not yet over, narrowed
    by the filters present; one variant per combination, built and compiled once, the values bound per call.

    ``count(*) OVER ()`` is the total before OFFSET and LIMIT: the page and its page count in one statement
    (the count alone only for a page past the end, e.g. an old 下一页 button)."""
    conditions = [Activity.status == "open", Activity.end_at > bindparam("now")]
    if category:
        conditions.append(Activity.category == bindparam("category"))
    if window_start:
        conditions.append(Activity.end_at > bindparam("window_start"))
    if window_end:
        conditions.append(Activity.start_at < bindparam("window_end"))
    if area:
        conditions.append(or_(_PLACE_IN_AREA, col(Activity.organization_id).in_(
            select(Organization.id).where(_ORGANIZATION_IN_AREA))))
    page = (select(Activity.id, Activity.title, Activity.start_at, Activity.end_at, Activity.place,
                   func.count().over().label("total"))
            .where(*conditions).order_by(Activity.start_at, Activity.id)
            .offset(bindparam("offset")).limit(bindparam("limit")))
    count = select(func.count()).select_from(Activity).where(*conditions)
    return page, count


async def upcoming_lines(session: Reads, *, now: datetime, offset: int, limit: int,
                         filters: ActivityFilter | None = None) -> tuple[list[ActivityLine], int]:
    """A page of the open activities not yet over (all, or those ``filters`` narrows to) as list lines,
    soonest first, and how many there are in all."""
    filters = filters or ActivityFilter()
    page, count = _line_statements(bool(filters.category), filters.window_start is not None,
                                   filters.window_end is not None, bool(filters.area))
    values: dict[str, Any] = {"now": now, "offset": offset, "limit": limit, "category": filters.category,
                              "window_start": filters.window_start, "window_end": filters.window_end,
                              "area_like": _like_contains(filters.area) if filters.area else None}
    rows = await fetch_rows(session, page, values)
    if not rows:
        total = 0 if offset == 0 else int((await fetch_rows(session, count, values))[0][0])
        return [], total
    return ([ActivityLine(id=id_, title=title, start_at=start_at, end_at=end_at, place=place)
             for id_, title, start_at, end_at, place, _total in rows], int(rows[0][5]))


@dataclass(frozen=True, slots=True)
class LocatedLine:
    """A list line of an activity that has coordinates, with them (for 附近的活动)."""

    line: ActivityLine
    latitude: float
    longitude: float


# the located upcoming activities, soonest first (their distance is reckoned in Python); built once
_LOCATED = (select(Activity.id, Activity.title, Activity.start_at, Activity.end_at, Activity.place,
                   Activity.latitude, Activity.longitude)
            .where(Activity.status == "open", Activity.end_at > bindparam("now"),
                   col(Activity.latitude).is_not(None), col(Activity.longitude).is_not(None))
            .order_by(Activity.start_at, Activity.id).limit(bindparam("limit")))


async def located_upcoming(session: Reads, *, now: datetime, limit: int = 500) -> list[LocatedLine]:
    """Open activities not yet over that have coordinates (at most ``limit``, soonest first), as rows."""
    return [LocatedLine(ActivityLine(id=id_, title=title, start_at=start_at, end_at=end_at, place=place),
                        float(latitude), float(longitude))
            for id_, title, start_at, end_at, place, latitude, longitude
            in await fetch_rows(session, _LOCATED, {"now": now, "limit": limit})]


async def area_known(session: Reads, *, area: str) -> bool:
    """Whether some organization's name or some activity's place contains ``area`` (a search word that is
    a place, not a stray word)."""
    return bool((await fetch_rows(session, _AREA_KNOWN, {"area_like": _like_contains(area)}))[0][0])


async def count_confirmed(session: AsyncSession, *, activity_id: int) -> int:
    result = await session.exec(
        select(func.count()).select_from(Signup).where(
            Signup.activity_id == activity_id, Signup.status == "confirmed"
        )
    )
    return int(result.one())


@dataclass(frozen=True, slots=True)
class ActivityDetails:
    """What the details page shows of an activity: its columns, its confirmed places and the reader's
    sign-up, read as one row (no entity: the page is a read, and a turn reading rows opens no session)."""

    id: int
    title: str
    description: str
    category: str
    place: str
    start_at: datetime
    end_at: datetime
    capacity: int
    organization_id: int
    status: str
    confirmed: int
    mine: str | None  # the reader's sign-up (confirmed / waitlist) while the activity is open and not over


# the confirmed places and the reader's live sign-up, each a probe of the activity's sign-ups
_CONFIRMED_HERE = (select(func.count()).select_from(Signup)
                   .where(Signup.activity_id == Activity.id, Signup.status == "confirmed")
                   .correlate(Activity).scalar_subquery())
_MINE_HERE = (select(Signup.status)
              .where(Signup.activity_id == Activity.id, Signup.person_id == bindparam("person_id"),
                     Signup.status != "cancelled")
              .correlate(Activity).limit(1).scalar_subquery())
# the details page in one statement, built once (as 我的报名 lists it, a sign-up counts while the activity is
# open and not over)
_DETAILS = (select(Activity.id, Activity.title, Activity.description, Activity.category, Activity.place,
                   Activity.start_at, Activity.end_at, Activity.capacity, Activity.organization_id, Activity.status,
                   _CONFIRMED_HERE.label("confirmed"),
                   case(((Activity.status == "open") & (Activity.end_at > bindparam("now")), _MINE_HERE))
                   .label("mine"))
            .where(Activity.id == bindparam("activity_id")))


async def activity_details(session: Reads, *, activity_id: int, person_id: int,
                           now: datetime) -> ActivityDetails | None:
    """The activity as its details page shows it, with how many are confirmed and the person's sign-up
    status; None when there is no such activity. One statement, no entity loaded."""
    rows = await fetch_rows(session, _DETAILS, {"activity_id": activity_id, "person_id": person_id, "now": now})
    if not rows:
        return None
    *columns, confirmed, mine = rows[0]
    return ActivityDetails(*columns, confirmed=int(confirmed), mine=mine)


async def _lock_activity(session: AsyncSession, activity_id: int) -> Activity:
    # FOR UPDATE serialises sign-ups for one activity on PostgreSQL; SQLite has one writer anyway
    activity = (
        await session.exec(select(Activity).where(Activity.id == activity_id).with_for_update())
    ).first()
    if activity is None:
        raise ActivityError("not_found")
    return activity


async def join_activity(session: AsyncSession, *, activity_id: int, person_id: int, now: datetime) -> JoinResult:
    activity = await _lock_activity(session, activity_id)
    if activity.status != "open":
        raise ActivityError("closed")
    if activity.start_at <= now:
        raise ActivityError("started")
    signup = (
        await session.exec(
            select(Signup).where(Signup.activity_id == activity_id, Signup.person_id == person_id)
        )
    ).first()
    if signup is not None and signup.status in ("confirmed", "waitlist"):
        raise ActivityError("already_" + signup.status)
    confirmed = await count_confirmed(session, activity_id=activity_id)
    status = "confirmed" if confirmed < activity.capacity else "waitlist"
    if signup is not None:
        # a re-join after cancelling is a new row: the back of the waitlist, which is ordered by id
        await session.delete(signup)
        await session.flush()
    signup = Signup(activity_id=activity_id, person_id=person_id, status=status, created_at=now, updated_at=now)
    session.add(signup)
    await session.flush()
    position = 0
    if status == "waitlist":
        position = await waitlist_position(session, signup=signup)
    return JoinResult(signup=signup, waitlisted=status == "waitlist", position=position)


async def waitlist_position(session: AsyncSession, *, signup: Signup) -> int:
    """The waitlist is ordered by id, not by the turn's clock: ids are drawn after the activity's row is
    locked, so they follow the order in which joins got the lock; two turns whose clocks disagree (or
    that started in another order) cannot both be told the same place."""
    result = await session.exec(
        select(func.count()).select_from(Signup).where(
            Signup.activity_id == signup.activity_id,
            Signup.status == "waitlist",
            col(Signup.id) <= signup.id,
        )
    )
    return int(result.one())


async def cancel_signup(session: AsyncSession, *, activity_id: int, person_id: int, now: datetime) -> CancelResult:
    activity = await _lock_activity(session, activity_id)
    signup = (
        await session.exec(
            select(Signup).where(Signup.activity_id == activity_id, Signup.person_id == person_id)
        )
    ).first()
    if signup is None or signup.status == "cancelled":
        raise ActivityError("not_signed_up")
    if activity.start_at <= now:
        raise ActivityError("started")
    was_confirmed = signup.status == "confirmed"
    signup.status = "cancelled"
    signup.updated_at = now
    session.add(signup)
    await session.flush()
    promoted = None
    if was_confirmed:
        promoted = await promote_waitlist(session, activity=activity, now=now)
        if promoted is not None:
            await notify_person(
                session,
                person_id=promoted.person_id,
                message=_("好消息：有人取消了报名，你已从候补转为正式参加「{title}」。", title=activity.title),
                now=now,
                source="waitlist",
                choices=[(_("查看活动"), f"act:{activity.id}")],
                urgent=True,
            )
    return CancelResult(signup=signup, promoted=promoted)


async def promote_waitlist(session: AsyncSession, *, activity: Activity, now: datetime) -> Signup | None:
    assert activity.id is not None
    if await count_confirmed(session, activity_id=activity.id) >= activity.capacity:
        return None
    first = (
        await session.exec(
            select(Signup)
            .where(Signup.activity_id == activity.id, Signup.status == "waitlist")
            .order_by(col(Signup.id))
        )
    ).first()
    if first is None:
        return None
    first.status = "confirmed"
    first.updated_at = now
    session.add(first)
    await session.flush()
    return first


async def roster(session: AsyncSession, *, activity_id: int) -> list[tuple[Signup, Person]]:
    rows = await session.exec(
        select(Signup, Person)
        .join(Person, Person.id == Signup.person_id)
        .where(Signup.activity_id == activity_id, Signup.status != "cancelled")
        .order_by(Signup.status, Signup.created_at, Signup.id)
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One line of a roster as a coordinator may see it: the phone masked, never in full."""

    name: str
    phone_masked: str
    status: str  # confirmed / waitlist
    checked_in: bool
    person_id: int = 0
    signed_up_at: datetime | None = None
    checkin_at: datetime | None = None
    checkout_at: datetime | None = None
    hours: float = 0.0  # approved hours recorded for this activity
    no_show: bool = False


async def roster_entries(session: AsyncSession, *, activity_id: int) -> list[RosterEntry]:
    hours = dict(list(await session.exec(
        select(HourRecord.person_id, func.sum(COUNTED_HOURS))
        .where(HourRecord.activity_id == activity_id, HourRecord.approved == True)  # noqa: E712
        .group_by(HourRecord.person_id))))
    return [RosterEntry(name=person.name or "", phone_masked=person.phone_masked or "", status=signup.status,
                        checked_in=signup.checkin_at is not None, person_id=signup.person_id,
                        signed_up_at=signup.created_at, checkin_at=signup.checkin_at,
                        checkout_at=signup.checkout_at, hours=float(hours.get(signup.person_id) or 0),
                        no_show=signup.no_show_at is not None)
            for signup, person in await roster(session, activity_id=activity_id)]


# 我的报名: the person's live sign-ups (their status) with the activities' list lines, soonest first; built once
_MY_SIGNUPS = (select(Signup.status, Activity.id, Activity.title, Activity.start_at, Activity.end_at, Activity.place)
               .join(Activity, Activity.id == Signup.activity_id)  # type: ignore[arg-type]
               .where(Signup.person_id == bindparam("person_id"), Signup.status != "cancelled",
                      Activity.status == "open", Activity.end_at > bindparam("now"))
               .order_by(Activity.start_at, Activity.id))


async def my_signups(session: Reads, *, person_id: int, now: datetime) -> list[tuple[str, ActivityLine]]:
    """The person's sign-ups (confirmed / waitlist) to open activities not yet over, as (status, list line)
    rows: no entity loaded (a volunteer's 我的报名 opens no session)."""
    return [(status, ActivityLine(id=id_, title=title, start_at=start_at, end_at=end_at, place=place))
            for status, id_, title, start_at, end_at, place
            in await fetch_rows(session, _MY_SIGNUPS, {"person_id": person_id, "now": now})]
