"""Coordinators' broadcasts: who a target reaches, queueing in one transaction, progress.

An organization's volunteers are its members and the members of every organization below it (a
center reaches its stations' volunteers), plus the registered people who signed up for one of those
organizations' activities or have hours recorded on one; coordinators reach only those (admins pick
any organization).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.sql import Select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import _
from models import Activity, Delivery, Identity, Organization, Person, Signup
from models.reminders import TARGET_KINDS, Broadcast
from services.members import members_and_participants
from services.orgs import descendant_ids
from services.reminders import queue_for_people, run_core, wants

MAX_TEXT = 1000


class BroadcastError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def org_volunteers(organization_ids: list[int]) -> Select:
    """person_id of every registered volunteer of these organizations (a subtree) who accepts broadcasts."""
    return sa.select(col(Person.id).label("person_id")).where(
        col(Person.status) == "active",
        col(Person.id).in_(members_and_participants(organization_ids)),
        wants("broadcast", Person.id),
    )


async def target_people(session: AsyncSession, *, organization_id: int, kind: str, value: str) -> Select:
    if kind not in TARGET_KINDS:
        raise BroadcastError("bad_target")
    # the subtree is read first: an INSERT … SELECT that starts with WITH gets no row count on SQLite
    tree = await descendant_ids(session, organization_id=organization_id)
    people = org_volunteers(sorted(tree))
    if kind == "skill":
        # skills are stored comma-separated: match a whole code
        people = people.where((sa.literal(",", sa.String) + col(Person.skills) + ",").contains(f",{value},"))
    elif kind == "area":
        if not value.strip():
            raise BroadcastError("bad_target")
        people = people.where(col(Person.area).contains(value.strip()))
    elif kind == "activity":
        activity = await session.get(Activity, int(value)) if value.isdigit() else None
        if activity is None or activity.organization_id not in tree:
            raise BroadcastError("activity_not_in_org")
        people = people.where(col(Person.id).in_(
            sa.select(col(Signup.person_id)).where(col(Signup.activity_id) == activity.id,
                                                   col(Signup.status) != "cancelled")))
    return people


@dataclass(frozen=True, slots=True)
class Audience:
    people: int  # volunteers reached (with at least one active identity)
    messages: int  # outbox rows it will take (one per active identity)


async def count_audience(session: AsyncSession, *, organization_id: int, kind: str, value: str) -> Audience:
    people = (await target_people(session, organization_id=organization_id, kind=kind, value=value)).subquery()
    joined = (sa.select(sa.func.count(sa.distinct(col(Identity.person_id))), sa.func.count())
              .select_from(Identity).join(people, people.c.person_id == col(Identity.person_id))
              .where(col(Identity.active) == sa.true()))
    reached, messages = (await run_core(session, joined)).one()
    return Audience(int(reached), int(messages))


async def queue_broadcast(session: AsyncSession, *, author_id: int, organization_id: int, kind: str, value: str,
                          text: str, now: datetime) -> Broadcast:
    """The broadcast row and every outbox row, flushed together: the caller's commit makes them all visible."""
    text = text.strip()
    if not text:
        raise BroadcastError("empty")
    if len(text) > MAX_TEXT:
        raise BroadcastError("too_long")
    org = await session.get(Organization, organization_id)
    if org is None:
        raise BroadcastError("no_org")
    people = await target_people(session, organization_id=organization_id, kind=kind, value=value)
    # the audience query runs once, inside the INSERT … SELECT; who it reached is counted from the rows
    broadcast = Broadcast(author_id=author_id, organization_id=organization_id, target_kind=kind,
                          target_value=value[:128], text=text, recipients=0, created_at=now)
    session.add(broadcast)
    await session.flush()
    assert broadcast.id is not None
    choices = [(_("查看活动"), f"act:{value}")] if kind == "activity" else [(_("看看活动"), "acts:1")]
    broadcast.queued = await queue_for_people(
        session, people=people, message=_("【{name}】{text}", name=org.name, text=text), now=now,
        source="broadcast", choices=choices, broadcast_id=broadcast.id,
    )
    reached = await run_core(session,
        sa.select(sa.func.count(sa.distinct(col(Identity.person_id)))).select_from(Delivery)
        .join(Identity, col(Identity.id) == col(Delivery.identity_id))
        .where(col(Delivery.broadcast_id) == broadcast.id))
    broadcast.recipients = int(reached.scalar_one())
    session.add(broadcast)
    await session.flush()
    return broadcast


@dataclass(frozen=True, slots=True)
class Progress:
    sent: int = 0
    failed: int = 0
    held: int = 0
    pending: int = 0  # waiting or being sent right now

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.held + self.pending


async def progress(session: AsyncSession, *, broadcast_id: int) -> Progress:
    rows = await run_core(session,
        sa.select(col(Delivery.status), sa.func.count()).where(col(Delivery.broadcast_id) == broadcast_id)
        .group_by(col(Delivery.status))
    )
    counts = {status: int(n) for status, n in rows}
    return Progress(sent=counts.get("sent", 0), failed=counts.get("failed", 0), held=counts.get("held", 0),
                    pending=counts.get("pending", 0) + counts.get("claimed", 0) + counts.get("sending", 0))


async def recent_broadcasts(session: AsyncSession, *, organization_ids: list[int], limit: int = 5) -> list[Broadcast]:
    rows = await session.exec(
        select(Broadcast).where(col(Broadcast.organization_id).in_(organization_ids))
        .order_by(col(Broadcast.id).desc()).limit(limit)
    )
    return list(rows)
