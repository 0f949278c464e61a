"""Due reminders → outbox rows, each written at most once.

The scheduler calls the ``queue_*`` functions as often as it likes (every few minutes, again after a
restart, from two processes at once): a ``reminder_key`` row with a unique (kind, ref, person, due date)
is inserted with ON CONFLICT DO NOTHING in the same transaction as the outbox rows, and only the keys
this run inserted get rows. Rows are written with INSERT … SELECT, so reminding 100,000 people is one
statement, not 100,000 ORM objects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.sqltypes import UTCDateTime

from common.i18n import Text, _, by_language, join, lines, month_day, month_day_time, ngettext, to_json
from models import Activity, Delivery, HourRecord, Identity, Person, Role, Signup
from models.reminders import REMINDER_KINDS, Observance, ReminderKey, ReminderPreference
from services.calendar import Rule, dates_between
from services.notify import INLINE_ONLY_CHANNELS

SEND_HOUR = time(9, 0)  # observance reminders go out from 09:00 local time
ACTIVITY_EARLY = timedelta(hours=24)
ACTIVITY_LATE = timedelta(hours=2)
HOURS_GRACE = timedelta(days=2)  # remind coordinators this long after an activity ended without hours
HOURS_GIVE_UP = timedelta(days=14)  # 10 working days: after that the reminder would not help


ChoiceSpec = tuple[Text, str]  # (label, value)


@dataclass(frozen=True, slots=True)
class ReminderKeySpec:
    kind: str
    ref_id: int
    due_on: date


async def run_core(session: AsyncSession, statement: Any) -> Any:
    """A Core statement (INSERT … SELECT, UPDATE … RETURNING) on the session's connection and transaction."""
    return await (await session.connection()).execute(statement)


# ---- preferences ---------------------------------------------------------------------------------
async def preferences(session: AsyncSession, *, person_id: int) -> dict[str, bool]:
    rows = await session.exec(select(ReminderPreference).where(ReminderPreference.person_id == person_id))
    chosen = {row.kind: row.enabled for row in rows}
    return {kind: chosen.get(kind, True) for kind in REMINDER_KINDS}


async def set_preference(session: AsyncSession, *, person_id: int, kind: str, enabled: bool,
                         now: datetime) -> None:
    if kind not in REMINDER_KINDS:
        raise ValueError(f"unknown reminder kind {kind!r}")
    row = await session.get(ReminderPreference, (person_id, kind))
    if row is None:
        row = ReminderPreference(person_id=person_id, kind=kind)
    row.enabled = enabled
    row.updated_at = now
    session.add(row)
    await session.flush()


def wants(kind: str, person_id: Any) -> sa.ColumnElement[bool]:
    """SQL condition: the person has not switched ``kind`` off (no row means on)."""
    return ~sa.exists().where(
        col(ReminderPreference.person_id) == person_id,
        col(ReminderPreference.kind) == kind,
        col(ReminderPreference.enabled) == sa.false(),
    )


def volunteers(kind: str) -> Select:
    """Registered volunteers who have not switched ``kind`` off (a SELECT of ``person_id``)."""
    return sa.select(col(Person.id).label("person_id")).where(col(Person.status) == "active", wants(kind, Person.id))


# ---- writing rows --------------------------------------------------------------------------------
def _stored_choices(choices: list[ChoiceSpec]) -> list[dict[str, Any]]:
    return [{"label": to_json(label), "value": value} for label, value in choices]


def _insert(session: AsyncSession, table: sa.Table) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))


async def queue_for_people(
    session: AsyncSession,
    *,
    people: Select,
    message: Text,
    now: datetime,
    source: str,
    due_at: datetime | None = None,
    choices: list[ChoiceSpec] | None = None,
    urgent: bool = False,
    broadcast_id: int | None = None,
    key: ReminderKeySpec | None = None,
) -> int:
    """Write one outbox row per active identity of each person in ``people`` (a SELECT of ``person_id``).

    With ``key``, people who already had this reminder are skipped (and a concurrent run writes
    nothing twice). Returns the number of rows written. The caller commits.
    """
    people_sq = people.subquery("people")
    person_ids: Any = people_sq.c.person_id
    if key is not None:
        batch = uuid.uuid4().hex
        keys = ReminderKey.__table__
        # SQLite needs a WHERE in INSERT … SELECT … ON CONFLICT to parse the ON CONFLICT clause
        rows = sa.select(
            sa.literal(key.kind), sa.literal(key.ref_id), person_ids, sa.literal(key.due_on, sa.Date),
            sa.literal(batch), sa.literal(now, UTCDateTime()),
        ).where(sa.true())
        await run_core(session,
            _insert(session, keys)
            .from_select(["kind", "ref_id", "person_id", "due_on", "batch", "created_at"], rows)
            .on_conflict_do_nothing(index_elements=["kind", "ref_id", "person_id", "due_on"])
        )
        recipients: Any = sa.select(col(ReminderKey.person_id).label("person_id")).where(
            col(ReminderKey.batch) == batch).subquery("fresh")
        person_ids = recipients.c.person_id
    # one message id for everyone: each row is rendered in its recipient's language when sent
    select_rows = (
        sa.select(
            col(Identity.id),
            col(Identity.channel),
            sa.literal(""),
            sa.literal(to_json(message), sa.JSON()),
            sa.literal(_stored_choices(choices or []), sa.JSON()),
            sa.literal(source),
            sa.literal(urgent),
            sa.literal(due_at or now, UTCDateTime()),
            sa.case((col(Identity.channel).in_(sorted(INLINE_ONLY_CHANNELS)), sa.literal("held")),
                    else_=sa.literal("pending")),
            sa.literal(0),
            sa.literal(now, UTCDateTime()),
            sa.literal(broadcast_id, sa.Integer()),
        )
        .select_from(Identity)
        .join(recipients if key is not None else people_sq, person_ids == col(Identity.person_id))
        .where(col(Identity.active) == sa.true())
    )
    result = await run_core(session,
        sa.insert(Delivery.__table__).from_select(
            ["identity_id", "channel", "text", "message", "choices", "source", "urgent", "due_at", "status", "attempts",
             "created_at", "broadcast_id"],
            select_rows,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---- observances ---------------------------------------------------------------------------------
def local_date(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def at_local(day: date, when: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, when, tzinfo=tz).astimezone(UTC)


async def suggested_activities(session: AsyncSession, *, categories: str, now: datetime, until: datetime,
                               limit: int = 3) -> list[Activity]:
    query = select(Activity).where(Activity.status == "open", Activity.start_at > now, Activity.start_at <= until)
    codes = [c.strip() for c in categories.split(",") if c.strip()]
    if codes:
        query = query.where(col(Activity.category).in_(codes))
    return list(await session.exec(query.order_by(Activity.start_at, Activity.id).limit(limit)))


@dataclass(frozen=True, slots=True)
class DueObservance:
    observance: Observance
    day: date
    days_left: int  # 0 = today


async def due_observances(session: AsyncSession, *, today: date, default_days_before: int) -> list[DueObservance]:
    due = []
    for observance in await session.exec(select(Observance).where(Observance.active == True)):  # noqa: E712
        lead = observance.days_before if observance.days_before is not None else default_days_before
        for day in dates_between(Rule.of(observance), today, today + timedelta(days=max(lead, 0))):
            left = (day - today).days
            if left == 0 or left == lead:
                due.append(DueObservance(observance, day, left))
    return due


async def queue_observance_reminders(session: AsyncSession, *, now: datetime, tz: ZoneInfo,
                                     default_days_before: int) -> int:
    """N days before and on the day: a reminder to every opted-in volunteer, with matching activities."""
    today = local_date(now, tz)
    total = 0
    for item in await due_observances(session, today=today, default_days_before=default_days_before):
        observance = item.observance
        assert observance.id is not None
        until = at_local(item.day + timedelta(days=7), time(23, 59), tz)
        suggestions = await suggested_activities(session, categories=observance.categories, now=now, until=until)
        name = by_language(observance.name, observance.name_en)
        if item.days_left:
            head = ngettext("【{name}】还有 {count} 天（{date}）。", "【{name}】还有 {count} 天（{date}）。", item.days_left,
                            name=name, date=month_day(item.day))
        else:
            head = _("【{name}】就是今天。", name=name)
        rows: list[Text] = [lines(head, by_language(observance.reminder_text, observance.reminder_text_en),
                                  sep="")]
        if suggestions:
            rows.append(_("近期相关活动："))
            for activity in suggestions:
                when = activity.start_at.astimezone(tz)
                rows.append(_("· {title}（{when}，{place}）", title=activity.title, when=f"{when:%m-%d %H:%M}",
                              place=activity.place))
        rows.append(_("不想收到节日提醒？回复「关闭节日提醒」。"))
        choices: list[ChoiceSpec] = [(a.title[:30], f"act:{a.id}") for a in suggestions]
        choices.append((_("看看活动"), "acts:1"))
        total += await queue_for_people(
            session, people=volunteers("observance"), message=join(rows), now=now,
            due_at=max(now, at_local(today, SEND_HOUR, tz)), source="observance", choices=choices,
            key=ReminderKeySpec("obs_day" if item.days_left == 0 else "obs_before", observance.id, item.day),
        )
    return total


# ---- activities ----------------------------------------------------------------------------------
async def queue_activity_reminders(session: AsyncSession, *, now: datetime, tz: ZoneInfo) -> int:
    """24 h and 2 h before an activity: each confirmed volunteer is asked to confirm or cancel."""
    activities = await session.exec(
        select(Activity).where(Activity.status == "open", Activity.start_at > now,
                               Activity.start_at <= now + ACTIVITY_EARLY)
    )
    total = 0
    for activity in list(activities):
        assert activity.id is not None
        late = activity.start_at - now <= ACTIVITY_LATE
        people = sa.select(col(Signup.person_id).label("person_id")).where(
            col(Signup.activity_id) == activity.id, col(Signup.status) == "confirmed",
            wants("activity", Signup.person_id),
        )
        if not late:
            # someone who joined within the last day has just read the details: no "tomorrow" reminder
            people = people.where(col(Signup.created_at) <= activity.start_at - ACTIVITY_EARLY + timedelta(hours=4))
        start = activity.start_at.astimezone(tz)
        # by the calendar in TIMEZONE, not by the 24 h: at 00:48 an activity at 22:00 is today's
        lead = _("2 小时后") if late else _("今天") if start.date() <= local_date(now, tz) else _("明天")
        total += await queue_for_people(
            session, people=people, now=now, source="activity",
            message=_("活动提醒：你报名的「{title}」{lead}开始（{when}），地点：{place}。"
                      "能来请点「确认参加」，来不了请「取消报名」，把名额留给候补的伙伴。",
                      title=activity.title, lead=lead, when=month_day_time(start.replace(tzinfo=None)),
                      place=activity.place),
            choices=[(_("确认参加"), f"confirm:{activity.id}"), (_("取消报名"), f"leave:{activity.id}")],
            key=ReminderKeySpec("act_2h" if late else "act_24h", activity.id, start.date()),
        )
    return total


async def queue_hours_reminders(session: AsyncSession, *, now: datetime, tz: ZoneInfo) -> int:
    """Coordinators: an activity ended 2 days ago and nobody recorded its hours yet."""
    no_hours = ~sa.exists().where(col(HourRecord.activity_id) == col(Activity.id))
    has_volunteers = sa.exists().where(col(Signup.activity_id) == col(Activity.id), col(Signup.status) == "confirmed")
    activities = await session.exec(
        select(Activity).where(Activity.status == "open", Activity.end_at <= now - HOURS_GRACE,
                               Activity.end_at > now - HOURS_GIVE_UP, no_hours, has_volunteers)
    )
    total = 0
    for activity in list(activities):
        assert activity.id is not None
        coordinators = sa.select(col(Role.person_id).label("person_id")).where(
            col(Role.role) == "coordinator", col(Role.organization_id) == activity.organization_id
        ).distinct()
        ended = activity.end_at.astimezone(tz)
        total += await queue_for_people(
            session, people=coordinators, now=now, source="hours_due",
            message=_("「{title}」（{ended}）已结束 2 天，还没有登记志愿时长。按规定请在活动结束后 10 个工作日内完成记录。",
                      title=activity.title, ended=month_day(ended.date())),
            choices=[(_("记录时长"), f"rec:{activity.id}")],
            key=ReminderKeySpec("hours_due", activity.id, (ended + HOURS_GRACE).date()),
        )
    return total


async def run_due_reminders(session: AsyncSession, *, now: datetime, tz: ZoneInfo,
                            default_days_before: int) -> dict[str, int]:
    """Everything due now (used by the scheduler jobs and by tests)."""
    return {
        "observance": await queue_observance_reminders(session, now=now, tz=tz,
                                                       default_days_before=default_days_before),
        "activity": await queue_activity_reminders(session, now=now, tz=tz),
        "hours": await queue_hours_reminders(session, now=now, tz=tz),
    }
