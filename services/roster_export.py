"""An activity's roster as a table for export (CSV and .xlsx), and the signed link that downloads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import N_, Msg, Text
from models import Activity, HourRecord, Person, Signup
from services.exports import DATETIME, NUMBER, Column, Table, local_cell, sign_fields, verify_fields
from services.hours import COUNTED_HOURS

LINK_TTL = timedelta(hours=24)
LINK_PURPOSE = "roster-link"
STATUS_NAMES: dict[str, Msg] = {
    "confirmed": N_("已报名"),
    "waitlist": N_("候补"),
}


@dataclass(frozen=True, slots=True)
class RosterRow:
    number: int
    name: str
    phone_masked: str
    status: Text
    signed_up_at: datetime | None  # naive, local time (TIMEZONE)
    checkin_at: datetime | None
    checkout_at: datetime | None
    hours: float | None  # approved hours recorded for this activity


ROSTER_COLUMNS: tuple[Column, ...] = (
    Column(N_("序号"), attrgetter("number"), NUMBER, width=6),
    Column(N_("姓名"), attrgetter("name"), width=10),
    Column(N_("手机号（脱敏）"), attrgetter("phone_masked"), width=14),
    Column(N_("状态"), attrgetter("status"), width=10),
    Column(N_("报名时间"), attrgetter("signed_up_at"), DATETIME, width=17),
    Column(N_("签到时间"), attrgetter("checkin_at"), DATETIME, width=17),
    Column(N_("签退时间"), attrgetter("checkout_at"), DATETIME, width=17),
    Column(N_("时长（小时）"), attrgetter("hours"), NUMBER, width=11, total=True),
)



async def roster_rows(session: AsyncSession, *, activity_id: int, tz: ZoneInfo) -> list[RosterRow]:
    """Everyone signed up or waiting (not those who cancelled), as the roster lists them; phones masked."""
    found = await session.exec(
        select(Signup, Person)
        .join(Person, Person.id == Signup.person_id)
        .where(Signup.activity_id == activity_id, Signup.status != "cancelled")
        .order_by(Signup.status, col(Signup.created_at), col(Signup.id)))
    hours = dict((await session.exec(
        select(HourRecord.person_id, func.sum(COUNTED_HOURS))
        .where(HourRecord.activity_id == activity_id, HourRecord.approved == True)  # noqa: E712
        .group_by(col(HourRecord.person_id)))).all())
    return [RosterRow(number=number, name=person.name or "", phone_masked=person.phone_masked or "",
                      status=STATUS_NAMES.get(signup.status, signup.status),
                      signed_up_at=local_cell(signup.created_at, tz), checkin_at=local_cell(signup.checkin_at, tz),
                      checkout_at=local_cell(signup.checkout_at, tz), hours=hours.get(signup.person_id))
            for number, (signup, person) in enumerate(found, 1)]


def roster_table(activity: Activity, rows: list[RosterRow]) -> Table:
    """The one table both export formats are written from; the sheet is named after the activity."""
    return Table.of(f"{activity.id} {activity.title}", ROSTER_COLUMNS, rows)


def sign_roster(activity_id: int, *, expires_at: datetime, secret: str) -> str:
    return sign_fields((str(activity_id), str(int(expires_at.timestamp()))), purpose=LINK_PURPOSE, secret=secret)


def verify_roster(token: str, *, secret: str, now: datetime) -> int | None:
    """The activity id a token grants, or None when it is forged, garbled or expired."""
    fields = verify_fields(token, purpose=LINK_PURPOSE, secret=secret, count=2)
    if fields is None or not all(f.isascii() and f.isdigit() for f in fields):
        return None
    activity_id, expires = map(int, fields)
    return activity_id if datetime.fromtimestamp(expires, tz=UTC) > now else None
