"""A feature's read as plain rows on the driver: a Core statement compiled once, no ORM entity loaded.

A list the reply shows (the upcoming activities, the organizations to choose from) needs a few
columns, not entities: through ``AsyncSession.exec`` the ORM's execution (compile cache key, result
and loading machinery, identity map) cost more CPU than the database. Here the statement is compiled
once per dialect by :func:`models.hotpath.compiled` (SQLAlchemy's own SQL, bind and result processors,
so values convert as through the ORM) and run by the driver in the session's connection and
transaction, after the flush the ORM's autoflush would have made (it sees what the session holds).

A read needs no session at all: :func:`fetch_rows` takes a :data:`Reads`, either an ``AsyncSession``
(the web console, the scheduler, tests) or a :class:`RowSource`, which a chat turn gives
(``Turn.reads``: services/conversation.py ``TurnSession``). A turn's read then runs on the turn's own
connection without opening the ORM session, which for 我的时长 or 活动 was most of the CPU the feature
cost beyond the turn's skeleton; when the turn's session is open it is flushed first, as here.

``before_cursor_execute`` listeners still see each statement (statement counts, tracing).
Statements with expanding IN parameters do not fit (their SQL depends on the values). A result column whose
converter needs its wire type (Numeric on asyncpg) comes as the driver's own value (a Decimal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.asyncio import AsyncSession as CoreAsyncSession
from sqlalchemy.sql import ClauseElement
from sqlmodel.ext.asyncio.session import AsyncSession

from models.hotpath import compiled, sqlite_steps


class RowSource(Protocol):
    """Where a read-only feature's rows come from without an ORM session: it runs the statement in the
    transaction the caller's session (if any) would use, after that session's pending changes are flushed."""

    async def fetch_rows(self, statement: ClauseElement, values: Mapping[str, Any]) -> list[Sequence[Any]]: ...


# what the read services take: a session (any caller) or a turn's row source (no session opened)
Reads = AsyncSession | RowSource


async def flush_pending(session: AsyncSession) -> None:
    """The flush the session's own execution would make first (autoflush), only when it holds changes."""
    if session.new or session.dirty or session.deleted:
        await session.flush()


async def session_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, after the flush its own execution would have made (autoflush)."""
    await flush_pending(session)
    return await session.connection()


async def fetch_rows(source: Reads, statement: ClauseElement,
                     values: Mapping[str, Any]) -> list[Sequence[Any]]:
    """``statement`` (a module constant or a cached variant: compiled once) with ``values`` bound."""
    if not isinstance(source, CoreAsyncSession):  # SQLModel's session is one too
        return await source.fetch_rows(statement, values)
    conn = await session_connection(source)
    dialect = conn.dialect
    if dialect.driver not in ("asyncpg", "aiosqlite"):  # another driver: SQLAlchemy's Core execution
        return list((await conn.execute(statement, dict(values))).all())
    done = compiled(statement, dialect)
    parameters = done.parameters(values)
    sync = conn.sync_connection
    assert sync is not None
    sync.dispatch.before_cursor_execute(sync, None, done.sql, parameters, None, False)
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    if dialect.driver == "aiosqlite":
        # a read: one step, fetched, no COMMIT (a unique-constraint None cannot come of it)
        (raw,) = await driver._execute(sqlite_steps, driver._conn, [(done.sql, parameters, True)], False)
    else:
        try:
            raw = await driver.fetch(done.sql, *parameters)
        except Exception:
            if driver.is_closed():  # gone: SQLAlchemy's own statements would have invalidated it for the pool
                await conn.invalidate()
            raise
    return [done.row(row) for row in raw] if done.processed else list(raw)
