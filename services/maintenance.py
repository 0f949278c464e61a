"""Housekeeping the scheduler runs: old dedupe keys, expired link codes and old wrong link codes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from models import InboundSeen, LinkCode, LinkFailure
from services.linking import FAILURE_RETENTION

# WeChat retries within ~15 s and Telegram redelivers for at most a day: a week is plenty.
DEDUPE_RETENTION = timedelta(days=7)


async def prune_dedupe_keys(session: AsyncSession, *, now: datetime,
                            retention: timedelta = DEDUPE_RETENTION) -> int:
    result = await session.exec(delete(InboundSeen).where(InboundSeen.created_at < now - retention))
    expired = await session.exec(delete(LinkCode).where(LinkCode.expires_at < now))
    failures = await session.exec(delete(LinkFailure).where(LinkFailure.created_at < now - FAILURE_RETENTION))
    return int(result.rowcount or 0) + int(expired.rowcount or 0) + int(failures.rowcount or 0)
