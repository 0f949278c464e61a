"""WeChat callbacks already seen: signed (timestamp, nonce) pairs within the replay window, and
messages whose reply followed late as a customer-service message. In the database, so every worker
process (and the next one after a restart) sees them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from models.wechat import WeChatLateAnswer, WeChatNonce

# a message answered late is remembered this long (WeChat retries within about 15 s)
LATE_ANSWER_KEPT = timedelta(days=1)


def nonce_key(timestamp: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}:{nonce}".encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedCallback:
    """One signed callback to remember: its (timestamp, nonce) key and its body's digest."""

    nonce_key: str
    body_digest: str
    expires_at: datetime


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _remember(dialect: Any) -> Any:
    # rows stay the execute's parameters (an executemany): the statement and its compiled form are
    # cached, where an INSERT with the rows in it would be compiled again for every batch
    return dialect.insert(WeChatNonce).on_conflict_do_nothing(index_elements=["nonce_key"]).returning(
        WeChatNonce.nonce_key)


_REMEMBER = {"postgresql": _remember(postgresql), "sqlite": _remember(sqlite)}
_STORED = select(WeChatNonce.nonce_key, WeChatNonce.body_digest).where(
    WeChatNonce.nonce_key.in_(bindparam("keys", expanding=True)))  # type: ignore[attr-defined]
_PURGE = delete(WeChatNonce).where(WeChatNonce.expires_at < bindparam("now"))  # type: ignore[arg-type]


async def remember_nonces(connection: AsyncConnection, *, callbacks: Sequence[SignedCallback], now: datetime,
                          purge: bool = False) -> dict[str, str]:
    """Records many signed callbacks in one transaction and
    returns, per nonce key, the body digest stored for it: the callback's own when it was first (or
    the same body again), another one for a replay with another body. The first of two callbacks with
    one key in ``callbacks`` wins. On a connection, not a session (these rows are never ORM objects);
    commits itself (a failure leaves the rollback to the connection's close)."""
    if purge:  # rows past the window can never match again: the timestamp check refuses them first
        await connection.execute(_PURGE, {"now": now})
    first: dict[str, SignedCallback] = {}
    for callback in callbacks:
        first.setdefault(callback.nonce_key, callback)
    rows = [{"nonce_key": c.nonce_key, "body_digest": c.body_digest, "expires_at": c.expires_at}
            for c in first.values()]
    inserted = await connection.execute(_REMEMBER[connection.dialect.name], rows)
    stored = {key: first[key].body_digest for key in inserted.scalars()}
    if len(stored) < len(first):  # some were seen before: what was stored for them
        result = await connection.execute(_STORED, {"keys": [key for key in first if key not in stored]})
        stored.update({key: digest for key, digest in result})
    await connection.commit()
    return stored


async def claim_late_answer(session: AsyncSession, *, message_key: str, now: datetime) -> bool:
    """Marks a message as answered by a customer-service message; ``False`` when another process
    already did (then it sends nothing). Flushed; on success the caller commits with its outbox row."""
    await session.exec(delete(WeChatLateAnswer).where(WeChatLateAnswer.created_at < now - LATE_ANSWER_KEPT))  # type: ignore[call-overload, arg-type]
    session.add(WeChatLateAnswer(message_key=message_key[:160], created_at=now))
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def answered_late(session: AsyncSession, *, message_key: str) -> bool:
    return await session.get(WeChatLateAnswer, message_key[:160]) is not None
