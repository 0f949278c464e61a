"""Linking a second channel's identity to the same person (one volunteer, WeChat + Telegram).

How a link is made, and why:

1. The person asks for a code on the account they already use (``issue_link_code``).
2. On the other account they enter it (``claim_link_code``): the code is only *claimed* — the
   claiming identity is written on it — and nothing is linked yet.
3. The code's owner confirms on the account that asked for it (``confirm_link``), or refuses
   (``refuse_link``). Only then are the identities joined. A claimed code expires like any code.

A six-digit code can be guessed, so guesses are limited per identity: ``MAX_WRONG_CODES`` wrong
codes within ``WRONG_CODE_WINDOW`` lock linking for that identity for ``LOCK_DURATION``. The wrong
codes are rows (``link_failure``), so every process counts the same ones. Even a right guess only
asks the owner, who did not claim anything and can refuse.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import HourRecord, Identity, LinkCode, LinkFailure, Person, Role, Signup

CODE_TTL = timedelta(minutes=10)
MAX_WRONG_CODES = 5
WRONG_CODE_WINDOW = timedelta(hours=1)
LOCK_DURATION = timedelta(hours=1)
# wrong codes are kept this long: enough to see a window and the lock that followed it
FAILURE_RETENTION = WRONG_CODE_WINDOW + LOCK_DURATION


class LinkError(Exception):
    """``reason``: bad_code | locked (``until`` set) | same_person | both_registered | has_history | no_pending."""

    def __init__(self, reason: str, *, until: datetime | None = None, left: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.until = until  # locked: when linking opens again
        self.left = left  # bad_code: wrong codes left before the lock


async def issue_link_code(session: AsyncSession, *, person_id: int, now: datetime) -> LinkCode:
    """A new code for ``person_id``; any earlier code of theirs (and a request waiting on it) ends."""
    await session.exec(delete(LinkCode).where(col(LinkCode.person_id) == person_id))  # type: ignore[call-overload]
    for _ in range(5):
        code = f"{secrets.randbelow(10**6):06d}"
        if await session.get(LinkCode, code) is None:
            break
    row = LinkCode(code=code, person_id=person_id, expires_at=now + CODE_TTL, created_at=now)
    session.add(row)
    await session.flush()
    return row


# ---- wrong codes and the lock ----------------------------------------------------------------------
def lock_state(failures: Sequence[datetime]) -> tuple[datetime | None, list[datetime]]:
    """The wrong codes (oldest first) → when the last lock they caused ends, and the codes counted since.

    Each ``MAX_WRONG_CODES``-th wrong code within ``WRONG_CODE_WINDOW`` starts a lock of
    ``LOCK_DURATION``; counting starts afresh after it.
    """
    until: datetime | None = None
    streak: list[datetime] = []
    for at in failures:
        if until is not None and at < until:
            continue  # entered while locked (a concurrent process): the lock already counts
        streak = [s for s in streak if at - s < WRONG_CODE_WINDOW] + [at]
        if len(streak) >= MAX_WRONG_CODES:
            until, streak = at + LOCK_DURATION, []
    return until, streak


async def _lock_state(session: AsyncSession, *, identity_id: int, now: datetime) -> tuple[datetime | None, int]:
    """(the end of the lock on linking for this identity or ``None``, wrong codes left before one)."""
    failures = await session.exec(
        select(LinkFailure.created_at)
        .where(LinkFailure.identity_id == identity_id, LinkFailure.created_at > now - FAILURE_RETENTION)
        .order_by(col(LinkFailure.created_at), col(LinkFailure.id))
    )
    until, streak = lock_state(list(failures))
    counted = sum(1 for at in streak if now - at < WRONG_CODE_WINDOW)
    return (until if until is not None and until > now else None), MAX_WRONG_CODES - counted


async def link_locked_until(session: AsyncSession, *, identity_id: int, now: datetime) -> datetime | None:
    """The end of the lock on linking for this identity, or ``None`` when it may enter a code."""
    return (await _lock_state(session, identity_id=identity_id, now=now))[0]


async def _wrong_code(session: AsyncSession, *, identity_id: int, now: datetime) -> LinkError:
    session.add(LinkFailure(identity_id=identity_id, created_at=now))
    await session.flush()
    until, left = await _lock_state(session, identity_id=identity_id, now=now)
    return LinkError("locked", until=until) if until is not None else LinkError("bad_code", left=left)


# ---- claim, confirm, refuse ------------------------------------------------------------------------
async def _has_history(session: AsyncSession, person_id: int) -> bool:
    signups = (await session.exec(select(func.count()).select_from(Signup).where(Signup.person_id == person_id))).one()
    hours = (await session.exec(
        select(func.count()).select_from(HourRecord).where(HourRecord.person_id == person_id))).one()
    return bool(signups or hours)


async def _kept_and_absorbed(session: AsyncSession, *, owner_id: int, claimant_person_id: int) -> tuple[Person, Person]:
    """Which person stays (the registered one) and which is absorbed, or why they cannot be merged.

    Two registered people, or a person with sign-ups or hours who would be absorbed, are never
    merged automatically: a coordinator sorts that out.
    """
    owner = await session.get(Person, owner_id)
    claimant = await session.get(Person, claimant_person_id)
    assert owner is not None and claimant is not None
    if owner.id == claimant.id:
        raise LinkError("same_person")
    if owner.status == "active" and claimant.status == "active":
        raise LinkError("both_registered")
    keep, absorb = (claimant, owner) if claimant.status == "active" else (owner, claimant)
    assert absorb.id is not None
    if await _has_history(session, absorb.id):
        raise LinkError("has_history")
    return keep, absorb


async def claim_link_code(session: AsyncSession, *, identity: Identity, code: str, now: datetime) -> LinkCode:
    """``identity`` entered ``code``: the code now waits for its owner's confirmation.

    A locked identity is refused before the code is looked at; a wrong, expired or already claimed
    code counts as a wrong code. A code that could never be linked is refused at once, so the
    owner is never asked in vain.
    """
    assert identity.id is not None
    until = await link_locked_until(session, identity_id=identity.id, now=now)
    if until is not None:
        raise LinkError("locked", until=until)
    row = await session.get(LinkCode, code)
    if row is None or row.expires_at <= now or row.claimant_identity_id not in (None, identity.id):
        raise await _wrong_code(session, identity_id=identity.id, now=now)
    await _kept_and_absorbed(session, owner_id=row.person_id, claimant_person_id=identity.person_id)
    # conditional: of two identities entering the same code at once, one claims it
    result = await session.exec(  # type: ignore[call-overload]
        update(LinkCode)
        .where(col(LinkCode.code) == code, col(LinkCode.claimant_identity_id).is_(None)
               | (col(LinkCode.claimant_identity_id) == identity.id))
        .values(claimant_identity_id=identity.id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise await _wrong_code(session, identity_id=identity.id, now=now)
    await session.refresh(row)
    return row


async def pending_link(session: AsyncSession, *, person_id: int, now: datetime) -> LinkCode | None:
    """The claimed, unexpired code of ``person_id`` waiting for their answer."""
    return (await session.exec(
        select(LinkCode).where(LinkCode.person_id == person_id, col(LinkCode.claimant_identity_id).is_not(None),
                               LinkCode.expires_at > now)
    )).first()


async def claimant_of(session: AsyncSession, *, row: LinkCode) -> Identity:
    assert row.claimant_identity_id is not None
    identity = await session.get(Identity, row.claimant_identity_id)
    assert identity is not None
    return identity


async def confirm_link(session: AsyncSession, *, person_id: int, now: datetime) -> tuple[Person, Identity]:
    """The owner confirmed: move the identities (and roles) of the absorbed person onto the kept one.

    Returns the kept person and the identity that had claimed the code.
    """
    row = await pending_link(session, person_id=person_id, now=now)
    if row is None:
        raise LinkError("no_pending")
    claimant = await claimant_of(session, row=row)
    try:
        keep, absorb = await _kept_and_absorbed(session, owner_id=row.person_id, claimant_person_id=claimant.person_id)
    except LinkError:
        await session.delete(row)  # things changed since the claim (e.g. both registered): the request ends
        await session.flush()
        raise
    # synchronized: the turn's own identity object may be one of those moved
    await session.exec(update(Identity).where(col(Identity.person_id) == absorb.id)  # type: ignore[call-overload]
                       .values(person_id=keep.id))
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
    await session.refresh(claimant)
    return keep, claimant


async def refuse_link(session: AsyncSession, *, person_id: int, now: datetime) -> Identity | None:
    """The owner refused: the code and the request on it end. Returns the identity that had claimed it."""
    row = await pending_link(session, person_id=person_id, now=now)
    if row is None:
        return None
    claimant = await claimant_of(session, row=row)
    await session.delete(row)
    await session.flush()
    return claimant
