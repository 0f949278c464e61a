"""WeChat callbacks already seen: signed (timestamp, nonce) pairs within the replay window, and
messages whose reply followed late as a customer-service message. In the database, so every worker
process (and the next one after a restart) sees them."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
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
    first: dict[str, SignedCallback] = {}
    for callback in callbacks:
        first.setdefault(callback.nonce_key, callback)
    if connection.dialect.name == "sqlite":
        return await _remember_on_sqlite(connection, first, now=now, purge=purge)
    if purge:  # rows past the window can never match again: the timestamp check refuses them first
        await connection.execute(_PURGE, {"now": now})
    rows = [{"nonce_key": c.nonce_key, "body_digest": c.body_digest, "expires_at": c.expires_at}
            for c in first.values()]
    inserted = await connection.execute(_REMEMBER[connection.dialect.name], rows)
    stored = {key: first[key].body_digest for key in inserted.scalars()}
    if len(stored) < len(first):  # some were seen before: what was stored for them
        result = await connection.execute(_STORED, {"keys": [key for key in first if key not in stored]})
        stored.update({key: digest for key, digest in result})
    await connection.commit()
    return stored


# ---- SQLite: the whole write in one trip to the driver's worker thread -----------------------------
# Through SQLAlchemy the write is two trips (the INSERT, the COMMIT), each a hand-over to aiosqlite's
# thread and back through the event loop's self-pipe: on a WeChat request whose turn is stubbed out
# these trips were most of the channel's CPU. Here one function runs the purge, the INSERT … RETURNING,
# the SELECT of pairs seen before and the COMMIT on that thread (as models/sqlite_driver.py runs one
# statement). The table's own columns and SQLAlchemy's stored form of ``expires_at``, so ORM reads and
# the purge compare alike.
_SQLITE_ROWS_PER_STATEMENT = 300  # 3 variables a row, far below SQLite's limit of 32766


_DATETIME_AS_STORED: dict[Any, Callable[[datetime], str]] = {}  # per dialect (one per engine)


def _sqlite_datetime(connection: AsyncConnection) -> Callable[[datetime], str]:
    """SQLAlchemy's own conversion of a datetime for this column on this dialect."""
    dialect = connection.dialect
    processor = _DATETIME_AS_STORED.get(dialect)
    if processor is None:
        column_type = WeChatNonce.__table__.c.expires_at.type  # type: ignore[attr-defined]
        processor = _DATETIME_AS_STORED[dialect] = column_type.dialect_impl(dialect).bind_processor(dialect)
        assert processor is not None
    return processor


def _remember_on_thread(database: sqlite3.Connection, rows: list[tuple[str, str, str]],
                        purge_before: str | None) -> dict[str, str]:
    """On aiosqlite's worker thread: one transaction, committed, or rolled back on any failure."""
    try:
        if purge_before is not None:
            database.execute("DELETE FROM wechat_nonce WHERE expires_at < ?", (purge_before,))
        digests = {key: digest for key, digest, _expires in rows}
        stored: dict[str, str] = {}
        for start in range(0, len(rows), _SQLITE_ROWS_PER_STATEMENT):
            chunk = rows[start:start + _SQLITE_ROWS_PER_STATEMENT]
            cursor = database.execute(
                "INSERT INTO wechat_nonce (nonce_key, body_digest, expires_at) VALUES "
                + ", ".join(["(?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (nonce_key) DO NOTHING RETURNING nonce_key",
                [value for row in chunk for value in row])
            stored.update((key, digests[key]) for (key,) in cursor.fetchall())
        seen = [key for key in digests if key not in stored]
        for start in range(0, len(seen), _SQLITE_ROWS_PER_STATEMENT):
            chunk = seen[start:start + _SQLITE_ROWS_PER_STATEMENT]
            cursor = database.execute(
                "SELECT nonce_key, body_digest FROM wechat_nonce WHERE nonce_key IN ("
                + ", ".join(["?"] * len(chunk)) + ")", chunk)
            stored.update(cursor.fetchall())
        database.commit()
    except BaseException:
        database.rollback()
        raise
    return stored


async def _remember_on_sqlite(connection: AsyncConnection, first: dict[str, SignedCallback], *, now: datetime,
                              purge: bool) -> dict[str, str]:
    as_stored = _sqlite_datetime(connection)
    rows = [(c.nonce_key, c.body_digest, as_stored(c.expires_at)) for c in first.values()]
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection  # the aiosqlite connection; its sqlite3 connection lives on its thread
    try:
        return await driver._execute(_remember_on_thread, driver._conn, rows,  # type: ignore[union-attr]
                                     as_stored(now) if purge else None)
    except sqlite3.Error as error:  # raised as SQLAlchemy raises driver errors ("database is locked": OperationalError)
        raise DBAPIError.instance("remember_nonces", None, error, sqlite3.Error) from error


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
