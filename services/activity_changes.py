"""Activities that change: a coordinator edits a field or cancels with a reason; no-shows on the roster.

Everyone signed up or waitlisted is told what changed (one outbox row per active account, written with
INSERT … SELECT and rendered in each recipient's language when sent). A raised capacity promotes from
the waitlist in order; a time change drops the reminders computed for the old time (their once-only keys
and any row not yet sent), so the scheduler computes them again for the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Msg, Text, _, lines, month_day_time
from models import Activity, Delivery, Signup
from models.activity_changes import EDITABLE_FIELDS, ActivityChange
from models.reminders import ReminderKey
from services.activities import ActivityError, count_confirmed, promote_waitlist
from services.notify import notify_person
from services.reminders import queue_for_people

ACTIVITY_REMINDER_KINDS = ("act_24h", "act_2h")
RECENT = timedelta(days=14)  # an ended activity still shows in a coordinator's roster list this long


@dataclass(frozen=True, slots=True)
class TimeSpan:
    start: datetime  # aware, UTC
    end: datetime


EditValue = str | int | TimeSpan


@dataclass(slots=True)
class ChangeResult:
    activity: Activity
    notified: int  # outbox rows written for the people signed up or waitlisted
    promoted: list[Signup] = field(default_factory=list)


def span_text(start: datetime, end: datetime, tz: tzinfo) -> Msg:
    """12月20日 14:30–16:00 (the end with its date when it is another day), in the deployment's zone."""
    start_local, end_local = start.astimezone(tz).replace(tzinfo=None), end.astimezone(tz).replace(tzinfo=None)
    end_text: Text = (f"{end_local:%H:%M}" if end_local.date() == start_local.date()
                      else month_day_time(end_local))
    return _("{start}–{end}", start=month_day_time(start_local), end=end_text)


def _signed_or_waiting(activity_id: int) -> sa.Select:
    return sa.select(col(Signup.person_id).label("person_id")).where(
        col(Signup.activity_id) == activity_id, col(Signup.status).in_(("confirmed", "waitlist")))


async def _lock_open(session: AsyncSession, activity_id: int, now: datetime) -> Activity:
    activity = (await session.exec(select(Activity).where(Activity.id == activity_id).with_for_update())).first()
    if activity is None:
        raise ActivityError("not_found")
    if activity.status != "open":
        raise ActivityError("cancelled")
    if activity.end_at <= now:
        raise ActivityError("over")
    return activity


def _stored(activity: Activity, name: str, tz: tzinfo) -> str:
    if name == "time":
        start, end = activity.start_at.astimezone(tz), activity.end_at.astimezone(tz)
        return f"{start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M}"
    return str(getattr(activity, name))


def _notice(name: str, old_title: str, activity: Activity, tz: tzinfo, old: Text) -> Text:
    title = activity.title
    if name == "title":
        return _("活动「{old}」改名为「{title}」。", old=old_title, title=title)
    if name == "time":
        return lines(_("「{title}」时间改为 {when}（原定 {old}）。", title=title,
                       when=span_text(activity.start_at, activity.end_at, tz), old=old),
                     _("如不能参加，请取消报名，把名额留给候补的伙伴。"))
    if name == "place":
        return _("「{title}」地点改为 {place}（原定 {old}）。", title=title, place=activity.place, old=old)
    if name == "capacity":
        return _("「{title}」名额改为 {capacity} 人。", title=title, capacity=activity.capacity)
    return lines(_("「{title}」的活动介绍更新了：", title=title), activity.description or _("（无）"))


async def edit_activity(session: AsyncSession, *, activity_id: int, changed_by: int | None, name: str,
                        value: EditValue, now: datetime, tz: tzinfo) -> ChangeResult:
    """Change one field of an open activity that has not ended; tell everyone signed up or waitlisted.

    Raises :class:`ActivityError`: ``not_found``, ``cancelled``, ``over``, ``end_before_start``,
    ``start_past``, ``capacity_below_signups`` (more people are signed up than the new capacity).
    """
    if name not in EDITABLE_FIELDS:
        raise ValueError(f"not an editable field: {name!r}")
    activity = await _lock_open(session, activity_id, now)
    old_title, old_time = activity.title, span_text(activity.start_at, activity.end_at, tz)
    old_stored = _stored(activity, name, tz)
    old_shown: Text = old_time if name == "time" else old_stored
    if isinstance(value, TimeSpan):
        if value.end <= value.start:
            raise ActivityError("end_before_start")
        if value.start <= now:
            raise ActivityError("start_past")
        activity.start_at, activity.end_at = value.start, value.end
    elif name == "capacity":
        assert isinstance(value, int)
        if value < await count_confirmed(session, activity_id=activity_id):
            raise ActivityError("capacity_below_signups")
        activity.capacity = value
    else:
        setattr(activity, name, value)
    session.add(activity)
    session.add(ActivityChange(activity_id=activity_id, changed_by=changed_by, kind="edit", field=name,
                               old_value=old_stored, new_value=_stored(activity, name, tz), created_at=now))
    await session.flush()
    notified = await queue_for_people(
        session, people=_signed_or_waiting(activity_id), now=now, source="activity_change",
        message=_notice(name, old_title, activity, tz, old_shown),
        choices=[(_("查看活动"), f"act:{activity_id}")], urgent=True)
    promoted: list[Signup] = []
    if name == "capacity":
        while (signup := await promote_waitlist(session, activity=activity, now=now)) is not None:
            promoted.append(signup)
            await notify_person(
                session, person_id=signup.person_id, now=now, source="waitlist", urgent=True,
                message=_("好消息：「{title}」增加了名额，你已从候补转为正式参加。", title=activity.title),
                choices=[(_("查看活动"), f"act:{activity_id}")])
    if name == "time":
        await drop_activity_reminders(session, activity_id=activity_id)
    return ChangeResult(activity=activity, notified=notified, promoted=promoted)


async def cancel_activity(session: AsyncSession, *, activity_id: int, changed_by: int | None, reason: str,
                          now: datetime, tz: tzinfo) -> ChangeResult:
    """Cancel an open activity that has not ended: it leaves every list, cannot be joined, sends no reminder."""
    activity = await _lock_open(session, activity_id, now)
    activity.status = "cancelled"
    session.add(activity)
    session.add(ActivityChange(activity_id=activity_id, changed_by=changed_by, kind="cancel", old_value="open",
                               new_value="cancelled", reason=reason, created_at=now))
    await session.flush()
    notified = await queue_for_people(
        session, people=_signed_or_waiting(activity_id), now=now, source="activity_change", urgent=True,
        message=lines(_("很抱歉，「{title}」（{when}）已取消。", title=activity.title,
                        when=span_text(activity.start_at, activity.end_at, tz)),
                      _("原因：{reason}", reason=reason)),
        choices=[(_("看看其他活动"), "acts:1")])
    await drop_activity_reminders(session, activity_id=activity_id)
    return ChangeResult(activity=activity, notified=notified)


async def drop_activity_reminders(session: AsyncSession, *, activity_id: int) -> int:
    """Forget the activity's reminders: their once-only keys (so the new time gets its own) and the rows
    not yet sent (pending, or held for a channel that cannot push). Returns the rows removed."""
    await session.exec(sa.delete(ReminderKey).where(  # type: ignore[call-overload]
        col(ReminderKey.kind).in_(ACTIVITY_REMINDER_KINDS), col(ReminderKey.ref_id) == activity_id))
    marker = f"confirm:{activity_id}"
    # the JSON text narrows the rows in SQL (held rows of channels that cannot push may pile up); the
    # choice's value decides
    unsent = await session.exec(select(Delivery).where(
        Delivery.source == "activity", col(Delivery.status).in_(("pending", "held")),
        sa.cast(col(Delivery.choices), sa.Text).contains(f'"{marker}"', autoescape=True)))
    stale = [row for row in unsent if any(choice.get("value") == marker for choice in row.choices or [])]
    for row in stale:
        await session.delete(row)
    await session.flush()
    return len(stale)


async def mark_no_show(session: AsyncSession, *, activity_id: int, person_id: int, no_show: bool,
                       now: datetime) -> Signup:
    """Mark (or unmark) a confirmed volunteer who did not come; only once the activity has begun and only
    for someone who did not check in. Raises :class:`ActivityError`: ``not_found``, ``not_signed_up``,
    ``not_started``, ``checked_in``."""
    activity = await session.get(Activity, activity_id)
    if activity is None:
        raise ActivityError("not_found")
    signup = (await session.exec(select(Signup).where(
        Signup.activity_id == activity_id, Signup.person_id == person_id, Signup.status == "confirmed"))).first()
    if signup is None:
        raise ActivityError("not_signed_up")
    if activity.start_at > now:
        raise ActivityError("not_started")
    if no_show and signup.checkin_at is not None:
        raise ActivityError("checked_in")
    signup.no_show_at = now if no_show else None
    signup.updated_at = now
    session.add(signup)
    await session.flush()
    return signup


async def managed_activities(session: AsyncSession, *, organization_ids: list[int], now: datetime,
                             limit: int, include_recent: bool = False) -> list[Activity]:
    """Open activities of these organizations not yet over (with ``include_recent``, also those that ended
    in the last two weeks, for rosters), soonest first."""
    if not organization_ids:
        return []
    since = now - RECENT if include_recent else now
    rows = await session.exec(
        select(Activity).where(Activity.status == "open", col(Activity.organization_id).in_(organization_ids),
                               Activity.end_at > since)
        .order_by(Activity.start_at, Activity.id).limit(limit))
    return list(rows)


async def changes_of(session: AsyncSession, *, activity_id: int) -> list[ActivityChange]:
    rows = await session.exec(select(ActivityChange).where(ActivityChange.activity_id == activity_id)
                              .order_by(col(ActivityChange.id)))
    return list(rows)
