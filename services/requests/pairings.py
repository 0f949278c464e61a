"""结对帮扶 pairings: a volunteer visits one resident every N days; visits logged in one sentence; missed-visit reminders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Text, _
from common.text import cn_number
from models import Activity, HourRecord, Person, Signup
from models.membership import Membership
from models.requests import Pairing, VisitLog
from services.hours_review import add_hours
from services.notify import notify_person
from services.people import PermissionDenied, require_manager
from services.requests.core import (
    MAX_SERVICE_HOURS,
    RequestError,
    _fold,
    notify_many,
    pattern,
    station_coordinators,
    stored_text,
)

# a pairing's volunteer is reminded when a visit is overdue; the coordinator this long after that
COORDINATOR_AFTER = timedelta(days=2)


async def volunteer_organizations(session: AsyncSession, *, person_id: int) -> set[int]:
    """The organizations a volunteer serves with: their membership, their activities signed up for, their hours,
    their pairings."""
    signed = select(Activity.organization_id).join(Signup, Signup.activity_id == Activity.id).where(
        Signup.person_id == person_id, Signup.status != "cancelled")
    served = select(HourRecord.organization_id).where(HourRecord.person_id == person_id,
                                                      col(HourRecord.organization_id).is_not(None))
    paired = select(Pairing.organization_id).where(Pairing.volunteer_id == person_id,
                                                   col(Pairing.organization_id).is_not(None))
    member = select(Membership.organization_id).where(Membership.person_id == person_id)
    found: set[int] = set()
    for query in (member, signed, served, paired):
        found |= {org for org in await session.exec(query) if org is not None}
    return found


async def pairing_organization(session: AsyncSession, *, volunteer_id: int, managed: list[int]) -> int | None:
    """Which of the coordinator's organizations a pairing with this volunteer belongs to: one the volunteer
    already serves with; any of them for a volunteer who serves with none yet; None when the volunteer
    belongs to other organizations only (no pairing across organizations)."""
    theirs = await volunteer_organizations(session, person_id=volunteer_id)
    shared = [org for org in managed if org in theirs]
    if shared:
        return shared[0]
    return managed[0] if managed and not theirs else None


async def create_pairing(session: AsyncSession, *, volunteer_id: int, resident_name: str, interval_days: int,
                         coordinator_id: int | None, organization_id: int | None, now: datetime,
                         admin: bool = False, resident_id: int | None = None) -> Pairing:
    """A pairing of ``organization_id``: its coordinator (or an admin) pairs one of its volunteers.

    Raises RequestError "not_manager" (the coordinator does not manage the organization, e.g. the
    role was revoked mid-dialog), "not_in_org" (the volunteer serves with other organizations only),
    "not_volunteer" or "bad_interval"."""
    if not admin:
        if coordinator_id is None or organization_id is None:
            raise RequestError("not_manager")
        try:
            await require_manager(session, person_id=coordinator_id, admin=False, organization_id=organization_id)
        except PermissionDenied as error:
            raise RequestError("not_manager") from error
    volunteer = await session.get(Person, volunteer_id)
    if volunteer is None or volunteer.status != "active":
        raise RequestError("not_volunteer")
    theirs = await volunteer_organizations(session, person_id=volunteer_id)
    if theirs and organization_id not in theirs:
        raise RequestError("not_in_org")
    if not 1 <= interval_days <= 90:
        raise RequestError("bad_interval")
    pairing = Pairing(organization_id=organization_id, coordinator_id=coordinator_id, volunteer_id=volunteer_id,
                      resident_name=resident_name.strip()[:64], resident_id=resident_id, interval_days=interval_days,
                      created_at=now)
    session.add(pairing)
    await session.flush()
    await notify_person(
        session, person_id=volunteer_id, now=now, source="pairing",
        message=_("你已与 {resident_name} 结对帮扶，请每 {interval_days} 天看望一次。看望后发一句话记录，例如「看望{resident_name} 1 小时，血压正常」。", resident_name=pairing.resident_name, interval_days=interval_days),
    )
    return pairing


async def pairings_of(session: AsyncSession, *, volunteer_id: int) -> list[Pairing]:
    rows = await session.exec(
        select(Pairing).where(Pairing.volunteer_id == volunteer_id, Pairing.active == True)  # noqa: E712
        .order_by(col(Pairing.id))
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class VisitLine:
    hours: float
    note: str
    text: str  # the whole line, to find which resident it names




def parse_visit_line(text: str) -> VisitLine | None:
    """「看望王奶奶 1 小时，血压正常」 → 1 h, note 「血压正常」; None when it is no visit log."""
    if not pattern("visit_verb", re.IGNORECASE).search(text):
        return None
    match = pattern("visit_hours", re.IGNORECASE).search(text)
    if match is None:
        return None
    number = match.group(1)
    if pattern("half").fullmatch(number):
        hours = 0.5
    else:
        hours = float(number) if number[0].isdigit() else float(cn_number(number) or 0)
    if match.group(2):
        hours += 0.5
    if not 0 < hours <= MAX_SERVICE_HOURS:
        return None
    note = pattern("note_lead").sub("", text[match.end():]).strip()
    return VisitLine(hours=hours, note=note[:400], text=text)


def pairing_named(pairings: list[Pairing], text: str) -> Pairing | None:
    """The pairing whose resident the line names; the only one when the volunteer has just one."""
    folded = _fold(text).lower()
    named = [p for p in pairings if _fold(p.resident_name).lower() in folded]
    if len(named) == 1:
        return named[0]
    if not named and len(pairings) == 1:
        return pairings[0]
    return None


async def log_visit(session: AsyncSession, *, pairing: Pairing, visit: VisitLine, visited_on: date,
                    now: datetime) -> VisitLog:
    """A visit and its hours, pending until a coordinator of the pairing's organization approves them;
    refused (HoursError "day_limit") past 24 h on that day."""
    record = await add_hours(
        session, person_id=pairing.volunteer_id, hours=visit.hours, served_on=visited_on,
        organization_id=pairing.organization_id, source="pairing", recorded_by=pairing.volunteer_id, now=now,
        note=stored_text(_("结对帮扶看望 {resident_name}：{note}", resident_name=pairing.resident_name, note=visit.note)))
    log = VisitLog(pairing_id=pairing.id, volunteer_id=pairing.volunteer_id, visited_on=visited_on,
                   hours=visit.hours, note=visit.note, hour_record_id=record.id, created_at=now)
    pairing.last_visit_at = now
    pairing.volunteer_reminded_at = None
    pairing.coordinator_reminded_at = None
    session.add(log)
    session.add(pairing)
    await session.flush()
    return log


async def remind_missed_visits(session: AsyncSession, *, now: datetime,
                               coordinator_after: timedelta = COORDINATOR_AFTER) -> dict[str, list[int]]:
    """No visit in N days → remind the volunteer (once); still none ``coordinator_after`` later → the coordinator."""
    pairings = list(await session.exec(select(Pairing).where(Pairing.active == True)))  # noqa: E712
    told: dict[str, list[int]] = {"volunteer": [], "coordinator": []}
    for pairing in pairings:
        due = (pairing.last_visit_at or pairing.created_at) + timedelta(days=pairing.interval_days)
        if now < due:
            continue
        days = (now - (pairing.last_visit_at or pairing.created_at)).days
        if pairing.volunteer_reminded_at is None:
            await notify_person(
                session, person_id=pairing.volunteer_id, now=now, source="pairing", urgent=True,
                message=_("你已经 {days} 天没有看望结对的 {resident_name} 了，方便时去看看吧。看望后发一句话记录，例如「看望{resident_name} 1 小时，一切都好」。", days=days, resident_name=pairing.resident_name),
            )
            pairing.volunteer_reminded_at = now
            told["volunteer"].append(pairing.id)
        elif pairing.coordinator_reminded_at is None and now >= pairing.volunteer_reminded_at + coordinator_after:
            volunteer = await session.get(Person, pairing.volunteer_id)
            name: Text = (volunteer.name if volunteer else None) or _("志愿者")
            recipients = ([pairing.coordinator_id] if pairing.coordinator_id else
                          await station_coordinators(session, organization_id=pairing.organization_id))
            await notify_many(session, recipients, now=now, urgent=True,
                               message=_("结对帮扶提醒：{name} 已 {days} 天没有看望 {resident_name}（约定每 {interval_days} 天一次），已提醒过志愿者，请跟进。", name=name, days=days, resident_name=pairing.resident_name, interval_days=pairing.interval_days))
            pairing.coordinator_reminded_at = now
            told["coordinator"].append(pairing.id)
        session.add(pairing)
    await session.flush()
    return told


