"""Outbox rows a channel asks for: a reply that missed its channel's deadline, sent like a notice."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Delivery, Identity

# the outbox's text column holds this much
MAX_TEXT = 8000


async def identity_by_external_id(session: AsyncSession, *, channel: str, external_id: str) -> Identity | None:
    return (await session.exec(select(Identity).where(
        Identity.channel == channel, Identity.external_id == external_id))).first()


async def queue_late_reply(session: AsyncSession, *, identity_id: int, channel: str, text: str,
                           now: datetime) -> Delivery:
    """An already rendered reply as a pending outbox row, due now. Flushed; the caller commits."""
    row = Delivery(identity_id=identity_id, channel=channel, text=text[:MAX_TEXT], choices=[],
                   source="late_reply", due_at=now, status="pending", created_at=now)
    session.add(row)
    await session.flush()
    return row
