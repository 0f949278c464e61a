"""The engine's own rows: who is talking, where their dialog is, which messages were already answered."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Delivery, DialogState, Identity, InboundSeen, Person, Role
from models.wechat import WeChatReplyPages
from services.people import create_identity
from services.wechat_state import REPLY_PAGES_CHANNEL, forget_reply_pages

MAX_MESSAGE_KEY = 160
MAX_DISPLAY_NAME = 128


# Core statements on the table (not the ORM entity), built once: no ORM bulk-DML layer, one cache key
_SEEN = InboundSeen.__table__  # type: ignore[attr-defined]
_CLAIM = insert(_SEEN).values(channel=bindparam("channel"), message_key=bindparam("message_key"),
                              created_at=bindparam("created_at"))
_STORE_REPLIES = (update(_SEEN)
                  .where(_SEEN.c.channel == bindparam("key_channel"), _SEEN.c.message_key == bindparam("key_message"))
                  .values(reply=bindparam("reply")))


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """The key of an ``inbound_seen`` row this delivery took (a plain value: the row is never read back)."""

    channel: str
    message_key: str


class MessageTaken(Exception):
    """Another delivery of this message id claimed it first; the session was rolled back."""


def message_claim(*, channel: str, message_id: str) -> ClaimedMessage:
    """The claim of a message id, for :func:`open_turn` to take with the speaker's SELECT."""
    return ClaimedMessage(channel=channel, message_key=message_id[:MAX_MESSAGE_KEY])


def claims_with_speaker(dialect_name: str) -> bool:
    """PostgreSQL runs an INSERT inside a WITH clause: the claim rides on the speaker's SELECT, one
    round trip fewer per turn. SQLite has no INSERT in WITH: there it is its own statement."""
    return dialect_name == "postgresql"


async def claim_message(session: AsyncSession, *, channel: str, message_id: str,
                        now: datetime) -> ClaimedMessage | None:
    """Take a message id before any work: ``None`` when another delivery of it got there first.

    The insert takes the row (and, on SQLite, the write lock) at once; on a clash the session is
    rolled back and the caller waits for the first delivery's replies. One Core INSERT: the row is
    written once and read never in this turn, so the ORM's unit of work would only cost CPU.
    """
    seen = message_claim(channel=channel, message_id=message_id)
    try:
        await session.exec(_CLAIM, params={"channel": seen.channel, "message_key": seen.message_key,  # type: ignore[call-overload]
                                           "created_at": now})
    except IntegrityError:
        await session.rollback()
        return None
    return seen


async def store_replies(session: AsyncSession, *, seen: ClaimedMessage, sealed: str) -> None:
    """The replies a retry gets, sealed by the caller (they hold personal data: never stored in clear)."""
    await session.exec(_STORE_REPLIES, params={"key_channel": seen.channel,  # type: ignore[call-overload]
                                               "key_message": seen.message_key, "reply": sealed})


async def stored_replies(session: AsyncSession, *, channel: str,
                         message_id: str) -> tuple[bool, str | list[dict[str, Any]] | None]:
    """(whether the message id is known, its sealed replies once the first delivery finished)."""
    row = await session.get(InboundSeen, (channel, message_id[:MAX_MESSAGE_KEY]))
    return (row is not None, row.reply if row is not None else None)


_STATE = DialogState.__table__  # type: ignore[attr-defined]
_STATE_COLUMNS = ("flow", "step", "data", "choices", "updated_at")
_STATE_READ = ("identity_id", *_STATE_COLUMNS)
_INSERT_STATE = insert(_STATE)


@functools.cache
def _update_state(columns: frozenset[str]) -> Any:
    """The UPDATE of just these dialog state columns, built once per set of columns (a handful occur)."""
    return (update(_STATE).where(_STATE.c.identity_id == bindparam("state_identity_id"))
            .values({column: bindparam(column) for column in sorted(columns)}))


@dataclass(slots=True)
class DialogRow:
    """One identity's dialog state (the ``dialog_state`` row) as plain values, not an ORM entity: the
    engine reads it with the speaker and writes it in close_turn with one Core statement, so the
    handlers' changes neither autoflush mid-turn nor go through the unit of work, and setting a field
    costs a plain attribute write."""

    identity_id: int
    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    choices: list[dict[str, str]] = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass(slots=True)
class Speaker:
    identity: Identity
    person: Person
    state: DialogRow
    # notices wait for this identity's next reply (status "held"): looked up only then
    has_held_notices: bool = False
    # the person may hold some role; False when the speaker's SELECT found none (most people: then no
    # turn of theirs queries their roles)
    has_roles: bool = True
    state_is_new: bool = False
    # the dialog state's columns as read: close_turn writes only the ones that differ
    state_as_read: dict[str, Any] | None = None


# last_inbound_at only feeds WeChat's 48 h customer-service window: a few minutes of lag costs a
# write on most turns less than it costs the window (which then closes a little early, never late)
LAST_INBOUND_RESOLUTION = timedelta(minutes=5)

_HELD = (exists().where(Delivery.identity_id == Identity.id, Delivery.status == "held")
         .correlate(Identity).label("held"))
_HAS_ROLES = exists().where(Role.person_id == Identity.person_id).correlate(Identity).label("has_roles")
_PAGES = (exists().where(WeChatReplyPages.openid == Identity.external_id, Identity.channel == REPLY_PAGES_CHANNEL)
          .correlate(Identity).label("pages"))
# who is talking, their person, dialog state, whether notices or reply pages wait and whether the person
# holds any role: one round trip.
# Built once: the statement and its cache key are not rebuilt per turn.
_SPEAKER = (
    select(Identity, Person, *(_STATE.c[column] for column in _STATE_READ), _HELD, _PAGES,
           _HAS_ROLES)
    .join(Person, Person.id == Identity.person_id)  # type: ignore[arg-type]
    .outerjoin(DialogState, DialogState.identity_id == Identity.id)  # type: ignore[arg-type]
    .where(Identity.channel == bindparam("channel"), Identity.external_id == bindparam("external_id"))
)
# PostgreSQL: the message id's claim (see claim_message) in the same statement. A WITH clause's INSERT
# runs once and to completion whether or not the SELECT returns a row; a clash fails the statement.
_SPEAKER_CLAIMING = _SPEAKER.add_cte(
    insert(_SEEN).values(channel=bindparam("claim_channel"), message_key=bindparam("claim_key"),
                         created_at=bindparam("claim_at")).cte("claim"))


async def open_turn(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    now: datetime,
    display_name: str | None,
    language: str | None,
    unsubscribing: bool,
    claim: ClaimedMessage | None = None,
) -> Speaker:
    """The identity (created on first contact, re-activated when they write again) and its dialog state.

    With ``claim`` (PostgreSQL only, :func:`claims_with_speaker`) the message id is claimed in the
    same statement; :class:`MessageTaken` when another delivery has it (the session rolled back).

    Reply pages an earlier long answer left for "下一页" are dropped: this message was not "下一页"
    (the channel serves those before the core), so they no longer follow on from anything.
    """
    params: dict[str, Any] = {"channel": channel, "external_id": external_id}
    if claim is None:
        row = (await session.exec(_SPEAKER, params=params)).first()  # type: ignore[call-overload]
    else:
        params.update(claim_channel=claim.channel, claim_key=claim.message_key, claim_at=now)
        try:
            row = (await session.exec(_SPEAKER_CLAIMING, params=params)).first()  # type: ignore[call-overload]
        except IntegrityError:
            await session.rollback()
            raise MessageTaken from None
    state_id: int | None
    if row is None:
        identity, person = await create_identity(session, channel=channel, external_id=external_id, now=now,
                                                 last_inbound_at=now)
        # has_roles unknown: a concurrent first contact may have made the person (create_identity)
        state_id, held, pages, has_roles = None, False, False, True
    else:
        identity, person, state_id, flow, step, data, choices, updated_at, held, pages, has_roles = row
    if pages:
        await forget_reply_pages(session, openid=external_id)
    last = identity.last_inbound_at
    if last is None or abs(now - last) >= LAST_INBOUND_RESOLUTION:
        identity.last_inbound_at = now
    if not identity.active and not unsubscribing:
        identity.active = True
    # set only when different: an attribute set even to its own value makes the commit's flush work
    if display_name and identity.display_name != display_name[:MAX_DISPLAY_NAME]:
        identity.display_name = display_name[:MAX_DISPLAY_NAME]
    if language and identity.language != language:
        identity.language = language
    # no session.add(identity): it is in the session already (loaded or created), its changes tracked
    if state_id is None:
        assert identity.id is not None
        return Speaker(identity, person, DialogRow(identity_id=identity.id, updated_at=now),
                       has_held_notices=bool(held), has_roles=bool(has_roles), state_is_new=True)
    state = DialogRow(state_id, flow, step, data, choices, updated_at)
    as_read = {"flow": flow, "step": step, "data": data, "choices": choices, "updated_at": updated_at}
    return Speaker(identity, person, state, has_held_notices=bool(held), has_roles=bool(has_roles),
                   state_as_read=as_read)


async def close_turn(session: AsyncSession, *, speaker: Speaker, choices: list[dict[str, str]], language: str,
                     now: datetime) -> None:
    """Remember the last reply's choices (so "2" picks one) and the language the person now reads.

    The dialog state row is written only when something in it changed; ``updated_at`` times an
    open dialog's idle timeout, so it moves only while a dialog is open.
    """
    state = speaker.state
    if state.choices != choices:
        state.choices = choices
    if state.flow is not None:
        state.updated_at = now
    values = {column: getattr(state, column) for column in _STATE_COLUMNS}
    if speaker.state_as_read is not None:
        changed = {column: value for column, value in values.items() if value != speaker.state_as_read[column]}
        if changed:
            await session.exec(_update_state(frozenset(changed)),  # type: ignore[call-overload]
                               params={**changed, "state_identity_id": state.identity_id})
    elif state.flow is not None or state.choices or state.data:
        await session.exec(_INSERT_STATE, params={**values, "identity_id": state.identity_id})  # type: ignore[call-overload]
    if language != (speaker.identity.language or "zh-Hans"):
        speaker.identity.language = language
        session.add(speaker.identity)


def unsubscribe(session: AsyncSession, *, identity: Identity) -> None:
    """They unfollowed: nothing is pushed to this identity until they write again."""
    identity.active = False
    session.add(identity)
