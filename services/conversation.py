"""The engine's own rows: who is talking, where their dialog is, which messages were already answered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from models import DialogState, Identity, InboundSeen, Person
from services.people import get_or_create_identity

MAX_MESSAGE_KEY = 160
MAX_DISPLAY_NAME = 128


async def claim_message(session: AsyncSession, *, channel: str, message_id: str, now: datetime) -> InboundSeen | None:
    """Take a message id before any work: ``None`` when another delivery of it got there first.

    The insert takes the row (and, on SQLite, the write lock) at once; on a clash the session is
    rolled back and the caller waits for the first delivery's replies.
    """
    seen = InboundSeen(channel=channel, message_key=message_id[:MAX_MESSAGE_KEY], created_at=now)
    session.add(seen)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return None
    return seen


def store_replies(session: AsyncSession, *, seen: InboundSeen, sealed: str) -> None:
    """The replies a retry gets, sealed by the caller (they hold personal data: never stored in clear)."""
    seen.reply = sealed
    session.add(seen)


async def stored_replies(session: AsyncSession, *, channel: str,
                         message_id: str) -> tuple[bool, str | list[dict[str, Any]] | None]:
    """(whether the message id is known, its sealed replies once the first delivery finished)."""
    row = await session.get(InboundSeen, (channel, message_id[:MAX_MESSAGE_KEY]))
    return (row is not None, row.reply if row is not None else None)


@dataclass(slots=True)
class Speaker:
    identity: Identity
    person: Person
    state: DialogState


async def open_turn(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    now: datetime,
    display_name: str | None,
    language: str | None,
    unsubscribing: bool,
) -> Speaker:
    """The identity (created on first contact, re-activated when they write again) and its dialog state."""
    identity, person = await get_or_create_identity(session, channel=channel, external_id=external_id, now=now)
    identity.last_inbound_at = now
    if not identity.active and not unsubscribing:
        identity.active = True
    if display_name:
        identity.display_name = display_name[:MAX_DISPLAY_NAME]
    if language:
        identity.language = language
    session.add(identity)
    state = await session.get(DialogState, identity.id)
    if state is None:
        state = DialogState(identity_id=identity.id, data={}, choices=[])
    return Speaker(identity, person, state)


def close_turn(session: AsyncSession, *, speaker: Speaker, choices: list[dict[str, str]], language: str,
               now: datetime) -> None:
    """Remember the last reply's choices (so "2" picks one) and the language the person now reads."""
    speaker.state.choices = choices
    speaker.state.updated_at = now
    session.add(speaker.state)
    if language != (speaker.identity.language or "zh-Hans"):
        speaker.identity.language = language
        session.add(speaker.identity)


def unsubscribe(session: AsyncSession, *, identity: Identity) -> None:
    """They unfollowed: nothing is pushed to this identity until they write again."""
    identity.active = False
    session.add(identity)
