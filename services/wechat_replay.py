"""WeChat callbacks already seen: signed (timestamp, nonce) pairs within the replay window, and
messages whose reply followed late as a customer-service message. In the database, so every worker
process (and the next one after a restart) sees them."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from models.wechat import WeChatLateAnswer, WeChatNonce

# a message answered late is remembered this long (WeChat retries within about 15 s)
LATE_ANSWER_KEPT = timedelta(days=1)


def nonce_key(timestamp: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}:{nonce}".encode("utf-8", "surrogateescape")).hexdigest()


async def remember_nonce(session: AsyncSession, *, timestamp: str, nonce: str, body: bytes, expires_at: datetime,
                         now: datetime, purge: bool = False) -> bool:
    """Records a signed callback's (timestamp, nonce). ``True`` the first time and for the same body
    again (WeChat's retry or an exact replay: the message dedupe gives it no second effect);
    ``False`` when the pair comes back with another body. Commits (or rolls back) itself."""
    key = nonce_key(timestamp, nonce)
    digest = hashlib.sha256(body).hexdigest()
    if purge:  # rows past the window can never match again: the timestamp check refuses them first
        await session.exec(delete(WeChatNonce).where(WeChatNonce.expires_at < now))  # type: ignore[call-overload, arg-type]
    session.add(WeChatNonce(nonce_key=key, body_digest=digest, expires_at=expires_at))
    try:
        await session.commit()
        return True
    except IntegrityError:
        await session.rollback()
    seen = await session.get(WeChatNonce, key)
    return seen is not None and seen.body_digest == digest


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
