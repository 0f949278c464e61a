"""Writing notices to the outbox (``delivery`` rows); senders or the next reply deliver them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.i18n import localize
from models import Delivery
from services.people import active_identities

# Channels with no push sender: their notices wait for the user's next message.
INLINE_ONLY_CHANNELS = frozenset({"console"})


async def notify_person(
    session: AsyncSession,
    *,
    person_id: int,
    zh: str,
    en: str,
    now: datetime,
    source: str = "notice",
    choices: list[tuple[str, str, str]] | None = None,  # (简体 label, English label, value)
    urgent: bool = False,
) -> list[Delivery]:
    """One outbox row per active identity of the person, each in that identity's language."""
    rows = []
    for identity in await active_identities(session, person_id=person_id):
        lang = identity.language
        row = Delivery(
            identity_id=identity.id,
            channel=identity.channel,
            text=localize(lang, zh, en),
            choices=[{"label": localize(lang, z, e), "value": v} for z, e, v in choices or []],
            source=source,
            urgent=urgent,
            due_at=now,
            status="held" if identity.channel in INLINE_ONLY_CHANNELS else "pending",
            created_at=now,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def claim_held_notices(session: AsyncSession, *, identity_id: int, now: datetime) -> list[Delivery]:
    """Notices that could not be pushed: hand them to the reply and mark them sent."""
    rows = list(
        await session.exec(
            select(Delivery)
            .where(Delivery.identity_id == identity_id, Delivery.status == "held", Delivery.due_at <= now)
            .order_by(Delivery.id)
        )
    )
    for row in rows:
        row.status = "sent"
        row.sent_at = now
        row.attempts += 1
        session.add(row)
    return rows
