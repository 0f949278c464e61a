"""Housekeeping the scheduler runs: old dedupe keys and expired link codes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from models import InboundSeen, LinkCode

# WeChat retries within ~15 s and Telegram redelivers for at most a day: a week is plenty.
DEDUPE_RETENTION = timedelta(days=7)


async def prune_dedupe_keys(session: AsyncSession, *, now: datetime,
                            retention: timedelta = DEDUPE_RETENTION) -> int:
    result = await session.exec(delete(InboundSeen).where(InboundSeen.created_at < now - retention))
    expired = await session.exec(delete(LinkCode).where(LinkCode.expires_at < now))
    return int(result.rowcount or 0) + int(expired.rowcount or 0)
