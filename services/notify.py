"""Writing notices to the outbox (``delivery`` rows); senders or the next reply deliver them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Text, from_json, render, to_json
from models import Delivery
from services.people import active_identities

# Channels with no push sender: their notices wait for the user's next message.
INLINE_ONLY_CHANNELS = frozenset({"console"})


async def notify_person(
    session: AsyncSession,
    *,
    person_id: int,
    now: datetime,
    message: Text,
    source: str = "notice",
    choices: list[tuple[Text, str]] | None = None,  # (label, value)
    urgent: bool = False,
    identity_ids: Collection[int] | None = None,  # only these accounts of the person
) -> list[Delivery]:
    """One outbox row per active identity of the person, rendered in its language when sent.

    A catalog text is stored as its message id and parameters (``message``); a plain string (a
    coordinator's own words) is stored as it is (``text``).
    """
    text, stored = (message, None) if isinstance(message, str) else ("", to_json(message))
    labels = [{"label": to_json(label), "value": value} for label, value in choices or []]
    rows = []
    for identity in await active_identities(session, person_id=person_id):
        if identity_ids is not None and identity.id not in identity_ids:
            continue
        row = Delivery(
            identity_id=identity.id,
            channel=identity.channel,
            text=text,
            message=stored,
            choices=labels,
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


def holds_notices_now(session: AsyncSession, *, identity_id: int) -> bool:
    """A notice for this identity was held in this session (the turn's own work): claim it with the reply."""
    return any(isinstance(row, Delivery) and row.identity_id == identity_id and row.status == "held"
               for row in session.identity_map.values())


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


def notice_text(row: Delivery, lang: str | None) -> str:
    """An outbox row's text in the recipient's language (a stored message id, or the plain text)."""
    if row.message is not None:
        return render(from_json(row.message), lang)
    return row.text


def notice_choices(choices: list[dict], lang: str | None) -> list[dict[str, str]]:
    return [{"label": render(c["label"], lang), "value": c["value"]} for c in choices]
