"""Linking a second channel's identity to the same person (one volunteer, WeChat + Telegram)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import HourRecord, Identity, LinkCode, Person, Role, Signup

CODE_TTL = timedelta(minutes=10)


class LinkError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def issue_link_code(session: AsyncSession, *, person_id: int, now: datetime) -> LinkCode:
    for _ in range(5):
        code = f"{secrets.randbelow(10**6):06d}"
        if await session.get(LinkCode, code) is None:
            break
    row = LinkCode(code=code, person_id=person_id, expires_at=now + CODE_TTL, created_at=now)
    session.add(row)
    await session.flush()
    return row


async def _has_history(session: AsyncSession, person_id: int) -> bool:
    signups = (await session.exec(select(func.count()).select_from(Signup).where(Signup.person_id == person_id))).one()
    hours = (await session.exec(
        select(func.count()).select_from(HourRecord).where(HourRecord.person_id == person_id))).one()
    return bool(signups or hours)


async def link_with_code(session: AsyncSession, *, identity: Identity, code: str, now: datetime) -> Person:
    """Move ``identity`` (and the roles of its person) onto the person who issued ``code``.

    The registered person is the one kept. Two registered people, or a person with sign-ups or
    hours who would be absorbed, are never merged automatically: a coordinator sorts that out.
    """
    row = await session.get(LinkCode, code)
    if row is None or row.expires_at <= now:
        raise LinkError("bad_code")
    target = await session.get(Person, row.person_id)
    current = await session.get(Person, identity.person_id)
    assert target is not None and current is not None
    if target.id == current.id:
        raise LinkError("same_person")
    if target.status == "active" and current.status == "active":
        raise LinkError("both_registered")
    keep, absorb = (current, target) if current.status == "active" else (target, current)
    if await _has_history(session, absorb.id):
        raise LinkError("has_history")
    await session.exec(update(Identity).where(Identity.person_id == absorb.id).values(person_id=keep.id))
    for role in list(await session.exec(select(Role).where(Role.person_id == absorb.id))):
        duplicate = (await session.exec(select(Role).where(
            Role.person_id == keep.id, Role.role == role.role, Role.organization_id == role.organization_id))).first()
        if duplicate:
            await session.delete(role)
        else:
            role.person_id = keep.id
            session.add(role)
    await session.delete(row)
    await session.flush()
    await session.refresh(identity)
    return keep
