"""The engine's own rows: who is talking, where their dialog is, which messages were already answered.

A turn's skeleton (claim, speaker, replies, dialog state, identity touch, commit) runs as plain
driver calls on the turn's connection (models/hotpath.py); the ORM is for the features. The speaker's
Identity and Person are built from the row as detached entities and join a session only when a
feature opens one (handlers/engine.py): a roleless volunteer's 帮助 creates no session at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, inspect, literal_column, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql import ClauseElement
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Delivery, DialogState, Identity, InboundSeen, Person, Role
from models.db import SessionFactory
from models.hotpath import Conflict, TurnConnection
from models.wechat import WeChatReplyPages
from services.rows import flush_pending
from services.wechat_state import REPLY_PAGES_CHANNEL, forget_reply_pages

MAX_MESSAGE_KEY = 160
MAX_DISPLAY_NAME = 128


# Core statements on the tables (not the ORM entities), built once: each is compiled once per dialect
_SEEN = InboundSeen.__table__  # type: ignore[attr-defined]
_CLAIM = insert(_SEEN).values(channel=bindparam("claim_channel"), message_key=bindparam("claim_key"),
                              created_at=bindparam("claim_at"))
_STORE_REPLIES = (update(_SEEN)
                  .where(_SEEN.c.channel == bindparam("key_channel"), _SEEN.c.message_key == bindparam("key_message"))
                  .values(reply=bindparam("reply")))


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """The key of an ``inbound_seen`` row this delivery took (a plain value: the row is never read back)."""

    channel: str
    message_key: str


class MessageTaken(Exception):
    """Another delivery of this message id claimed it first; the transaction was rolled back."""


def message_claim(*, channel: str, message_id: str) -> ClaimedMessage:
    """The claim of a message id, for :func:`open_turn` to take with the speaker's SELECT."""
    return ClaimedMessage(channel=channel, message_key=message_id[:MAX_MESSAGE_KEY])


async def stored_replies(session: AsyncSession, *, channel: str,
                         message_id: str) -> tuple[bool, str | list[dict[str, Any]] | None]:
    """(whether the message id is known, its sealed replies once the first delivery finished)."""
    row = await session.get(InboundSeen, (channel, message_id[:MAX_MESSAGE_KEY]))
    return (row is not None, row.reply if row is not None else None)


_STATE = DialogState.__table__  # type: ignore[attr-defined]
_STATE_COLUMNS = ("flow", "step", "data", "choices", "updated_at")
_INSERT_STATE = insert(_STATE).values({column: bindparam(column) for column in ("identity_id", *_STATE_COLUMNS)})


@functools.cache
def _update_state(columns: frozenset[str]) -> Any:
    """The UPDATE of just these dialog state columns, built once per set of columns (a handful occur)."""
    return (update(_STATE).where(_STATE.c.identity_id == bindparam("state_identity_id"))
            .values({column: bindparam(column) for column in sorted(columns)}))


_IDENTITY = Identity.__table__  # type: ignore[attr-defined]
_PERSON = Person.__table__  # type: ignore[attr-defined]
_IDENTITY_COLUMNS = tuple(column.name for column in _IDENTITY.c)
_PERSON_COLUMNS = tuple(column.name for column in _PERSON.c)


@functools.cache
def _touch_identity(columns: frozenset[str]) -> Any:
    """The UPDATE of the identity columns a turn moved (last_inbound_at, active, display_name, language)."""
    return (update(_IDENTITY).where(_IDENTITY.c.id == bindparam("touch_id"))
            .values({column: bindparam(f"touch_{column}") for column in sorted(columns)}))


@functools.cache
def _together(statements: tuple[ClauseElement, ...]) -> ClauseElement:
    """PostgreSQL: the closing writes as one statement (data-modifying WITH clauses all run): one round
    trip. Their bind names differ (replies, state columns, ``touch_*``), so they share one parameter set."""
    return select(literal_column("1")).add_cte(*(statement.cte(f"w{n}")  # type: ignore[attr-defined]
                                                 for n, statement in enumerate(statements)))


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
    # identity columns this turn moved: already the entity's committed values, written by close_turn
    identity_changes: dict[str, Any] = field(default_factory=dict)


# last_inbound_at only feeds WeChat's 48 h customer-service window: a few minutes of lag costs a
# write on most turns less than it costs the window (which then closes a little early, never late)
LAST_INBOUND_RESOLUTION = timedelta(minutes=5)

_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_ROLE = Role.__table__  # type: ignore[attr-defined]
_PAGES_TABLE = WeChatReplyPages.__table__  # type: ignore[attr-defined]
_HELD = (exists().where(_DELIVERY.c.identity_id == _IDENTITY.c.id, _DELIVERY.c.status == "held")
         .correlate(_IDENTITY).label("held"))
_HAS_ROLES = exists().where(_ROLE.c.person_id == _IDENTITY.c.person_id).correlate(_IDENTITY).label("has_roles")
_PAGES = (exists().where(_PAGES_TABLE.c.openid == _IDENTITY.c.external_id, _IDENTITY.c.channel == REPLY_PAGES_CHANNEL)
          .correlate(_IDENTITY).label("pages"))
# who is talking, their person, dialog state, whether notices or reply pages wait and whether the person
# holds any role: one round trip. Columns by position: identity's, person's, the state's, the flags.
_SPEAKER = (
    select(*_IDENTITY.c, *_PERSON.c, _STATE.c.identity_id, *(_STATE.c[column] for column in _STATE_COLUMNS),
           _HELD, _PAGES, _HAS_ROLES)
    .select_from(_IDENTITY.join(_PERSON, _PERSON.c.id == _IDENTITY.c.person_id)
                 .outerjoin(_STATE, _STATE.c.identity_id == _IDENTITY.c.id))
    .where(_IDENTITY.c.channel == bindparam("channel"), _IDENTITY.c.external_id == bindparam("external_id"))
)
# PostgreSQL: the message id's claim in the same statement. A WITH clause's INSERT runs once and to
# completion whether or not the SELECT returns a row; a clash fails the statement.
_SPEAKER_CLAIMING = _SPEAKER.add_cte(_CLAIM.cte("claim"))




def _scalar_defaults(table: Any) -> dict[str, Any]:
    """The table's Python-side constant defaults (person.status "guest", identity.active, …): the ORM
    applies them on ``add``; a Core INSERT run by the driver sends them as the statement's literals."""
    return {column.name: column.default.arg for column in table.c
            if column.default is not None and column.default.is_scalar}


# A first contact: the person and their identity. The identity's INSERT does nothing when a concurrent
# first contact of the same external id committed it first (on PostgreSQL it waits for that
# transaction): then this turn's person is an orphan, deleted, and the speaker read again.
_NEW_PERSON = insert(_PERSON).values(created_at=bindparam("new_at"), **_scalar_defaults(_PERSON))
_NEW_IDENTITY = {"channel": bindparam("channel"), "external_id": bindparam("external_id"),
                 "display_name": bindparam("new_display_name"), "language": bindparam("new_language"),
                 "last_inbound_at": bindparam("new_at"), "created_at": bindparam("new_at"),
                 **_scalar_defaults(_IDENTITY)}
_IDENTITY_KEY = (_IDENTITY.c.channel, _IDENTITY.c.external_id)
# SQLite: two statements in one worker-thread trip, the identity pointing at the person just inserted
_SQLITE_PERSON = _NEW_PERSON.returning(*_PERSON.c)
_SQLITE_IDENTITY = (sqlite_insert(_IDENTITY).values(person_id=func.last_insert_rowid(), **_NEW_IDENTITY)
                    .on_conflict_do_nothing(index_elements=_IDENTITY_KEY).returning(*_IDENTITY.c))
# PostgreSQL: one statement; the row's identity columns are NULL when the identity already existed
_PG_PERSON = _NEW_PERSON.returning(*_PERSON.c).cte("new_person")
_PG_IDENTITY = (postgresql_insert(_IDENTITY).values(person_id=select(_PG_PERSON.c.id).scalar_subquery(), **_NEW_IDENTITY)
                .on_conflict_do_nothing(index_elements=_IDENTITY_KEY).returning(*_IDENTITY.c).cte("new_identity"))
_PG_FIRST_CONTACT = select(*_PG_IDENTITY.c, *_PG_PERSON.c).select_from(_PG_PERSON.outerjoin(_PG_IDENTITY, true()))
_DROP_PERSON = delete(_PERSON).where(_PERSON.c.id == bindparam("orphan_id"))


async def _first_contact(db: TurnConnection, params: dict[str, Any], *, now: datetime, display_name: str | None,
                         language: str | None) -> Sequence[Any]:
    """The new speaker's row, shaped like the speaker's SELECT's: identity, person, no dialog state,
    no notices or pages, no role. Or, when a concurrent first contact made the identity, that SELECT's."""
    params.update(new_at=now, new_display_name=display_name[:MAX_DISPLAY_NAME] if display_name else None,
                  new_language=language or None)
    db.durable = True  # a person is made: the turn's COMMIT waits for the disk (TurnConnection.commit)
    n_identity = len(_IDENTITY_COLUMNS)
    if db.dialect.name == "postgresql":
        ((row,),) = await db.run([(_PG_FIRST_CONTACT, params)], fetch=(True,))
        identity_row, person_row = row[:n_identity], row[n_identity:]
        made = identity_row[0] is not None
    else:
        (person_row,), identities = await db.run([(_SQLITE_PERSON, params), (_SQLITE_IDENTITY, params)],
                                                 fetch=(True, True))
        made = bool(identities)
        identity_row = identities[0] if made else ()
    if made:
        return [*identity_row, *person_row, *(None,) * (1 + len(_STATE_COLUMNS)), False, False, False]
    params["orphan_id"] = person_row[_PERSON_COLUMNS.index("id")]
    _dropped, rows = await db.run([(_DROP_PERSON, params), (_SPEAKER, params)], fetch=(False, True))
    return rows[0]


@functools.cache
def _configured(model: type[Any]) -> Any:
    """The model's mapper, configured: its attributes work only then, and without a session (which
    configures the mappers on its first use) a process's first turn may be the first to build an entity."""
    configure_mappers()
    return model.__mapper__  # type: ignore[attr-defined]


def _detached(model: type[Any], values: dict[str, Any]) -> Any:
    """An entity from a row's values without the ORM's loading (or SQLModel's validation): detached,
    with a clean history, so a feature's session takes it in as persistent (``session.add``) and its
    later changes are flushed like a loaded entity's."""
    mapper = _configured(model)
    entity = mapper.class_manager.new_instance()
    entity.__dict__.update(values)
    # what make_transient_to_detached does for a fresh entity with every column set: its identity key
    instance_state(entity).key = (mapper._identity_class, (values["id"],), None)
    return entity


async def open_turn(
    db: TurnConnection,
    session: Callable[[], AsyncSession],
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

    With ``claim`` the message id is claimed first: in the speaker's statement on PostgreSQL, in the
    same worker-thread trip on SQLite. :class:`MessageTaken` when another delivery has it (rolled back).
    ``session`` opens the turn's ORM session: only waiting reply pages need it here. A first contact's
    person and identity are inserted on the driver too (one more statement on PostgreSQL, one more
    worker-thread trip on SQLite), and built like a known speaker's.

    Reply pages an earlier long answer left for "下一页" are dropped: this message was not "下一页"
    (the channel serves those before the core), so they no longer follow on from anything.
    """
    params: dict[str, Any] = {"channel": channel, "external_id": external_id}
    try:
        if claim is None:
            (rows,) = await db.run([(_SPEAKER, params)], fetch=(True,))
        else:
            params.update(claim_channel=claim.channel, claim_key=claim.message_key, claim_at=now)
            if db.dialect.name == "postgresql":
                (rows,) = await db.run([(_SPEAKER_CLAIMING, params)], fetch=(True,))
            else:
                _claimed, rows = await db.run([(_CLAIM, params), (_SPEAKER, params)], fetch=(False, True))
    except Conflict:
        raise MessageTaken from None
    changes: dict[str, Any] = {}
    row = rows[0] if rows else await _first_contact(db, params, now=now, display_name=display_name,
                                                    language=language)
    n_identity, n_person = len(_IDENTITY_COLUMNS), len(_PERSON_COLUMNS)
    identity = _detached(Identity, dict(zip(_IDENTITY_COLUMNS, row[:n_identity], strict=True)))
    person = _detached(Person, dict(zip(_PERSON_COLUMNS, row[n_identity:n_identity + n_person], strict=True)))
    state_row = row[n_identity + n_person:-3]
    held, pages, has_roles = row[-3:]
    if pages:
        await forget_reply_pages(session(), openid=external_id)
    last = identity.last_inbound_at
    if last is None or abs(now - last) >= LAST_INBOUND_RESOLUTION:
        changes["last_inbound_at"] = now
    if not identity.active and not unsubscribing:
        changes["active"] = True
    if display_name and identity.display_name != display_name[:MAX_DISPLAY_NAME]:
        changes["display_name"] = display_name[:MAX_DISPLAY_NAME]
    if language and identity.language != language:
        changes["language"] = language
    _commit_values(identity, changes)
    state_id, flow, step, data, choices, updated_at = state_row
    if state_id is None:
        assert identity.id is not None
        return Speaker(identity, person, DialogRow(identity_id=identity.id, updated_at=now),
                       has_held_notices=bool(held), has_roles=bool(has_roles), state_is_new=True,
                       identity_changes=changes)
    state = DialogRow(state_id, flow, step, data, choices, updated_at)
    as_read = {"flow": flow, "step": step, "data": data, "choices": choices, "updated_at": updated_at}
    return Speaker(identity, person, state, has_held_notices=bool(held), has_roles=bool(has_roles),
                   state_as_read=as_read, identity_changes=changes)


def _commit_values(identity: Identity, changes: dict[str, Any]) -> None:
    """The entity shows the turn's own identity changes as committed (close_turn writes them with the
    turn's closing statement), so a feature's session never flushes them a second time."""
    for column, value in changes.items():
        set_committed_value(identity, column, value)


async def close_turn(db: TurnConnection, *, speaker: Speaker, choices: list[dict[str, str]], language: str,
                     now: datetime, seen: ClaimedMessage | None = None, sealed: str | None = None,
                     commit: bool = True) -> None:
    """The turn's closing writes: the sealed replies a retry gets (``seen``), the last reply's choices
    (so "2" picks one), the language the person now reads, then COMMIT when ``commit`` (else the
    caller's session commits). One round trip on PostgreSQL, one worker-thread trip on SQLite.

    The dialog state row is written only when something in it changed; ``updated_at`` times an
    open dialog's idle timeout, so it moves only while a dialog is open.
    """
    statements: list[ClauseElement] = []
    params: dict[str, Any] = {}
    if seen is not None:
        statements.append(_STORE_REPLIES)
        params.update(key_channel=seen.channel, key_message=seen.message_key, reply=sealed)
    state = speaker.state
    if state.choices != choices:
        state.choices = choices
    if state.flow is not None:
        state.updated_at = now
    values = {column: getattr(state, column) for column in _STATE_COLUMNS}
    if speaker.state_as_read is not None:
        changed = {column: value for column, value in values.items() if value != speaker.state_as_read[column]}
        if changed:
            statements.append(_update_state(frozenset(changed)))
            params.update(changed, state_identity_id=state.identity_id)
    elif state.flow is not None or state.choices or state.data:
        statements.append(_INSERT_STATE)
        params.update(values, identity_id=state.identity_id)
    identity = speaker.identity
    if language != (identity.language or "zh-Hans"):
        speaker.identity_changes["language"] = language
        _commit_values(identity, {"language": language})
    if speaker.identity_changes:
        statements.append(_touch_identity(frozenset(speaker.identity_changes)))
        params.update({f"touch_{column}": value for column, value in speaker.identity_changes.items()},
                      touch_id=identity.id)
    if len(statements) > 1 and db.dialect.name == "postgresql":
        statements = [_together(tuple(statements))]
    if statements:
        await db.run([(statement, params) for statement in statements], commit=commit)
    elif commit:
        await db.commit()


async def finish_turn(db: TurnConnection, sessions: TurnSession, *, speaker: Speaker, choices: list[dict[str, str]],
                      language: str, now: datetime, seen: ClaimedMessage | None, sealed: str | None) -> None:
    """The turn's closing writes and its COMMIT, in one round trip (or worker-thread trip), after the
    session's flush. The driver's COMMIT is the session's too (one transaction on one connection); the
    session is not committed itself: closing the connection ends its transaction with nothing to undo."""
    session = sessions.session
    if session is None and sessions.modified():
        session = sessions()
    if session is not None:
        await session.flush()
    await close_turn(db, speaker=speaker, choices=choices, language=language, now=now, seen=seen, sealed=sealed)


class TurnSession:
    """A turn's ORM session, opened on first use on the turn's connection (inside its transaction), with
    the speaker's detached identity and person taken in as persistent. Most turns of most people need
    none: the engine's own statements run on the driver (models/hotpath.py), and so do a feature's reads
    (:meth:`fetch_rows`: it is the turn's ``services.rows.RowSource``)."""

    __slots__ = ("_db", "_entities", "_factory", "session")

    def __init__(self, factory: SessionFactory, db: TurnConnection) -> None:
        self._factory = factory
        self._db = db
        self._entities: tuple[Identity | Person, ...] = ()
        self.session: AsyncSession | None = None

    def __call__(self) -> AsyncSession:
        if self.session is None:
            # bound to the turn's connection: the session joins the transaction the turn's own
            # statements run in, and its commit is the turn's
            self.session = self._factory(bind=self._db.connection)
            for entity in self._entities:
                self.session.add(entity)
        return self.session

    def attach(self, *entities: Identity | Person) -> None:
        self._entities = entities
        if self.session is not None:
            for entity in entities:
                self.session.add(entity)

    def modified(self) -> bool:
        """A feature changed the identity or person without opening the session: they need a flush."""
        return any(inspect(entity).modified for entity in self._entities)

    async def fetch_rows(self, statement: ClauseElement, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        """A feature's read (services/rows.py) on the turn's connection, in its transaction, without opening
        the session: opening it (the session, its transaction on SQLAlchemy's connection, the speaker's
        entities added) cost a read-only turn more CPU than the read. What the read must see is flushed
        first, as the session's autoflush would: the open session's pending changes, or a change to the
        speaker's identity or person made without one (that opens the session: their UPDATE is its flush)."""
        session = self.session
        if session is None and self.modified():
            session = self()
        if session is not None:
            await flush_pending(session)
        (rows,) = await self._db.run([(statement, values)], fetch=(True,))
        return rows


def unsubscribe(speaker: Speaker) -> None:
    """They unfollowed: nothing is pushed to this identity until they write again."""
    speaker.identity_changes["active"] = False
    _commit_values(speaker.identity, {"active": False})
