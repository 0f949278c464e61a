"""The inbound queue: messages a channel acknowledged under overload, kept until a background turn
handles them (``models/inbound_queue.py``). In the database, so a restart or another worker finishes them.

Bounded by rows and by age: when the queue of a channel holds ``max_rows`` or its oldest row is older
than ``max_age`` (the drain is not keeping up), new messages are refused (``FULL``) and the channel says
so honestly. A message already queued (the same channel and message key: a platform's retry) joins its
row. Writes are on a connection (Core statements, never ORM objects), for the caller's group commit.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from models.inbound_queue import InboundQueued

_TABLE = InboundQueued.__table__  # type: ignore[attr-defined]
_C = _TABLE.c


class Queued(enum.Enum):
    QUEUED = "queued"  # a new row
    JOINED = "joined"  # the message was queued already (a retry)
    FULL = "full"  # past the bound: not kept
    REFUSED = "refused"  # the caller's check failed (WeChat: a replayed signature with another body): not kept


@dataclass(frozen=True, slots=True)
class QueueItem:
    message_key: str
    user_key: str
    payload: str  # sealed by the caller


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    id: int
    message_key: str
    user_key: str
    payload: str
    created_at: datetime


def _insert(dialect: Any) -> Any:
    # rows stay the execute's parameters (an executemany): one cached statement for every batch size
    return dialect.insert(_TABLE).on_conflict_do_nothing(
        index_elements=["channel", "message_key"]).returning(_C.message_key)


_INSERT = {"postgresql": _insert(postgresql), "sqlite": _insert(sqlite)}
_PRESENT = select(_C.message_key).where(_C.channel == bindparam("channel"),
                                        _C.message_key.in_(bindparam("keys", expanding=True)))
_SIZE = select(func.count(), func.min(_C.created_at)).where(_C.channel == bindparam("channel"))


async def enqueue(connection: AsyncConnection, *, channel: str, items: Sequence[QueueItem], now: datetime,
                  max_rows: int, max_age: timedelta) -> dict[str, Queued]:
    """Keeps what fits of ``items`` (in their order) and returns each message key's outcome. Commits
    itself (a failure leaves the rollback to the connection's close)."""
    first: dict[str, QueueItem] = {}
    for item in items:
        first.setdefault(item.message_key[:160], item)
    outcome = {key: Queued.JOINED for key in (await connection.execute(
        _PRESENT, {"channel": channel, "keys": list(first)})).scalars()}
    new = [(key, item) for key, item in first.items() if key not in outcome]
    if new:
        count, oldest = (await connection.execute(_SIZE, {"channel": channel})).one()
        room = 0 if oldest is not None and now - oldest > max_age else max(0, max_rows - count)
        kept, refused = new[:room], new[room:]
        outcome.update((key, Queued.FULL) for key, _ in refused)
        if kept:
            rows = [{"channel": channel, "message_key": key, "user_key": item.user_key, "payload": item.payload,
                     "created_at": now, "claimed_until": None} for key, item in kept]
            inserted = set((await connection.execute(_INSERT[connection.dialect.name], rows)).scalars())
            # not inserted: another process queued the same message meanwhile
            outcome.update((key, Queued.QUEUED if key in inserted else Queued.JOINED) for key, _ in kept)
    await connection.commit()
    return outcome


async def claim(connection: AsyncConnection, *, channel: str, now: datetime, lease: timedelta,
                limit: int) -> list[ClaimedItem]:
    """Up to ``limit`` rows to run now, oldest first, at most one per user and none of a user whose earlier
    row is still being handled (a user's messages keep their order); leased until ``now + lease``.
    Commits itself. Two workers never claim one row: the UPDATE re-checks the lease (on PostgreSQL it
    waits for the other's commit and then skips the row)."""
    if limit <= 0:
        return []
    free = or_(_C.claimed_until.is_(None), _C.claimed_until < now)
    busy_users = select(_C.user_key).where(_C.channel == channel, _C.claimed_until >= now)
    candidates = (await connection.execute(
        select(_C.id, _C.user_key).where(_C.channel == channel, free, _C.user_key.not_in(busy_users))
        .order_by(_C.id).limit(limit * 4))).all()
    earliest: dict[str, int] = {}
    for row_id, user_key in candidates:  # a user's older rows that are busy were excluded above
        earliest.setdefault(user_key, row_id)
    ids = sorted(earliest.values())[:limit]
    if not ids:
        await connection.commit()
        return []
    result = await connection.execute(
        update(_TABLE).where(and_(_C.id.in_(ids), free)).values(claimed_until=now + lease)
        .returning(_C.id, _C.message_key, _C.user_key, _C.payload, _C.created_at))
    claimed = sorted((ClaimedItem(*row) for row in result), key=lambda item: item.id)
    await connection.commit()
    return claimed


async def claim_user(connection: AsyncConnection, *, channel: str, user_key: str, now: datetime,
                     lease: timedelta, limit: int) -> list[ClaimedItem] | None:
    """Every row of one user, oldest first, leased until ``now + lease`` (to run ahead of their new message);
    None, with nothing claimed, when that cannot keep their order: one of the rows is being handled, there
    are more than ``limit``, or another worker took one meanwhile. Commits itself."""
    rows = (await connection.execute(
        select(_C.id, _C.claimed_until).where(_C.channel == channel, _C.user_key == user_key)
        .order_by(_C.id).limit(limit + 1))).all()
    if len(rows) > limit or any(until is not None and until >= now for _, until in rows):
        await connection.commit()
        return None
    if not rows:
        await connection.commit()
        return []
    free = or_(_C.claimed_until.is_(None), _C.claimed_until < now)
    result = await connection.execute(
        update(_TABLE).where(and_(_C.id.in_([row_id for row_id, _ in rows]), free)).values(claimed_until=now + lease)
        .returning(_C.id, _C.message_key, _C.user_key, _C.payload, _C.created_at))
    claimed = sorted((ClaimedItem(*row) for row in result), key=lambda item: item.id)
    if len(claimed) < len(rows):  # another worker took one: all or none, or the user's order breaks
        await connection.rollback()
        return None
    await connection.commit()
    return claimed


def forget_statement(ids: Sequence[int]) -> Any:
    """The DELETE of handled rows, for a caller's own transaction (the one that queues the reply)."""
    return delete(_TABLE).where(_C.id.in_(list(ids)))


async def forget(connection: AsyncConnection, *, ids: Sequence[int]) -> None:
    """Deletes handled rows; commits."""
    if ids:
        await connection.execute(forget_statement(ids))
    await connection.commit()


async def release(connection: AsyncConnection, *, ids: Sequence[int]) -> None:
    """Gives claimed rows back at once (their turn never started); commits."""
    if ids:
        await connection.execute(update(_TABLE).where(_C.id.in_(list(ids))).values(claimed_until=None))
    await connection.commit()


async def depth(connection: AsyncConnection) -> dict[str, int]:
    """Rows waiting per channel (claimed ones included)."""
    result = await connection.execute(select(_C.channel, func.count()).group_by(_C.channel))
    return {channel: int(count) for channel, count in result}


async def forget_in(session: AsyncSession, *, ids: Sequence[int]) -> None:
    """Deletes handled rows in the caller's transaction (the one that queues their reply); the caller commits."""
    if ids:
        await (await session.connection()).execute(forget_statement(ids))
