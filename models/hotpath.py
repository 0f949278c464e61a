"""A turn's skeleton on the driver connection: plain aiosqlite / asyncpg calls, not the ORM.

Every turn claims its message id, reads the speaker, stores its replies and writes the dialog state.
Through ``AsyncSession.exec`` each of those statements costs more CPU in SQLAlchemy (greenlet bridge,
compile cache key, result and ORM machinery) than in the driver and the database together. Here
a Core statement is compiled once per dialect (its SQL, parameter order and type processors are
SQLAlchemy's own, so values convert exactly as through the ORM) and then run by the driver itself:

- SQLite: several statements in one trip to aiosqlite's worker thread, the COMMIT included;
- PostgreSQL: asyncpg's own calls, which prepare each statement once per connection (its cache).

The statements run on the connection of a SQLAlchemy :class:`AsyncConnection`, inside the same
transaction that an ``AsyncSession`` bound to that connection uses when a feature needs the ORM.
Each statement is announced to the engine's ``before_cursor_execute`` listeners (cursor and context
``None``), so statement counts and tracing still see every statement a turn sends.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util.concurrency import greenlet_spawn


class Conflict(Exception):
    """A statement broke a unique constraint (e.g. a message id claimed twice); the transaction was
    rolled back."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement compiled for one dialect, with SQLAlchemy's bind and result processors per position."""

    sql: str
    names: tuple[str, ...]
    binds: tuple[Callable[[Any], Any] | None, ...]
    # (position, converter) of the result columns whose values SQLAlchemy converts (dates, JSON, …)
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]
    # the statement's own literals (e.g. status = 'held'), which SQLAlchemy also sends as parameters
    literals: Mapping[str, Any]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        literals = self.literals
        given = [values[name] if name not in literals else literals[name] for name in self.names]
        return tuple(value if bind is None else bind(value) for bind, value in zip(self.binds, given, strict=True))

    def row(self, raw: Sequence[Any]) -> list[Any]:
        values = list(raw)
        for index, process in self.processed:
            value = values[index]
            if value is not None:
                values[index] = process(value)
        return values


_compiled: dict[tuple[int, str], tuple[ClauseElement, Compiled]] = {}


def _result_processor(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's converter of a result column, or None where it needs the column's wire type, which a
    statement compiled ahead has not seen (asyncpg's Numeric): then the driver's own value (a Decimal)."""
    try:
        return column_type._cached_result_processor(dialect, None)  # type: ignore[no-any-return]
    except (TypeError, InvalidRequestError):
        return None


def compiled(statement: ClauseElement, dialect: Dialect) -> Compiled:
    """The statement's SQL for this dialect, compiled on first use (statements are module constants or
    cached per variant: the key holds the statement itself, so an id is never reused)."""
    key = (id(statement), dialect.name)
    found = _compiled.get(key)
    if found is not None:
        return found[1]
    done = statement.compile(dialect=dialect)
    names = tuple(done.positiontup or ())
    binds = tuple(done.binds[name].type._cached_bind_processor(dialect) for name in names)
    results = [_result_processor(column.type, dialect) for column in getattr(done, "_result_columns", ()) or ()]
    processed = tuple((index, process) for index, process in enumerate(results) if process is not None)
    # a bindparam() of ours has no value (the caller's); an anonymous one holds the statement's literal
    literals = {name: done.binds[name].effective_value for name in names
                if not done.binds[name].required and done.binds[name].value is not None}
    entry = Compiled(done.string, names, binds, processed, literals)
    _compiled[key] = (statement, entry)
    return entry


Step = tuple[ClauseElement, Mapping[str, Any]]


# SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE: a duplicate, not a broken reference
_SQLITE_UNIQUE = frozenset({1555, 2067})


def sqlite_steps(connection: sqlite3.Connection, steps: list[tuple[str, tuple[Any, ...], bool]],
                  commit: bool) -> list[list[Any]] | None:
    """On aiosqlite's worker thread: every statement, their rows, and the COMMIT. ``None`` when one
    broke a unique constraint (then everything is rolled back)."""
    out: list[list[Any]] = []
    try:
        for sql, parameters, fetch in steps:
            cursor = connection.execute(sql, parameters)
            out.append(cursor.fetchall() if fetch else [])
            cursor.close()
    except sqlite3.IntegrityError as error:
        if error.sqlite_errorcode not in _SQLITE_UNIQUE:
            raise
        connection.rollback()
        return None
    if commit:
        connection.commit()
    return out


def _sqlite_rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.rollback()


_LIGHT_COMMIT = "SET LOCAL synchronous_commit TO off"


class TurnConnection:
    """One turn's connection, checked out of the engine's pool: the driver's for the turn's own
    statements and, made on first use, SQLAlchemy's (for a session when a feature needs one)."""

    __slots__ = ("_adapter", "_connection", "_driver", "_engine", "_fairy", "_listeners", "_sqlite", "dialect",
                 "durable")

    def __init__(self, engine: AsyncEngine, fairy: Any) -> None:
        self._engine = engine
        self._fairy = fairy
        self._connection: AsyncConnection | None = None
        self.dialect: Dialect = engine.sync_engine.dialect
        self._adapter: Any = fairy.dbapi_connection
        self._driver: Any = fairy.driver_connection
        self._sqlite = self.dialect.name == "sqlite"
        self._listeners = engine.sync_engine.dispatch.before_cursor_execute
        # whether the COMMIT must wait for the WAL to reach the disk (see :meth:`commit`): a feature's write
        # through SQLAlchemy's connection sets it, as may a caller for a write of its own on the driver
        self.durable = False

    @classmethod
    async def open(cls, engine: AsyncEngine) -> TurnConnection:
        """A pool checkout without SQLAlchemy's Connection around it (the pool's own events still run:
        SQLite's pragmas on a new connection)."""
        return cls(engine, await greenlet_spawn(engine.sync_engine.raw_connection))

    @property
    def connection(self) -> AsyncConnection:
        """SQLAlchemy's connection on the same driver connection, hence in the same transaction."""
        if self._connection is None:
            sync = Connection(self._engine.sync_engine, connection=self._fairy)
            event.listen(sync, "before_cursor_execute", self._saw_statement)
            self._connection = AsyncConnection(self._engine, sync)
        return self._connection

    def _saw_statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Anything but a plain read through SQLAlchemy (the ORM's flush, a Core write, a savepoint) makes
        the turn's COMMIT durable."""
        if not self.durable and statement.lstrip()[:6].upper() != "SELECT":
            self.durable = True

    async def close(self) -> None:
        """Back to the pool (in a greenlet: a checkin may close an overflow connection)."""
        if self._connection is not None:
            await self._connection.close()
        else:
            await greenlet_spawn(self._fairy.close)

    def _announce(self, sql: str, parameters: tuple[Any, ...]) -> None:
        """The engine's ``before_cursor_execute`` listeners see the statement (with no Connection,
        cursor or context: there is none)."""
        if self._listeners:
            self._listeners(None, None, sql, parameters, None, False)

    async def run(self, steps: Sequence[Step], *, fetch: Sequence[bool] = (), commit: bool = False) -> list[list[list[Any]]]:
        """The statements in order (their rows where ``fetch`` says so), then COMMIT when ``commit``:
        one worker-thread trip on SQLite. :class:`Conflict` when one breaks a unique constraint."""
        plans = []
        for index, (statement, values) in enumerate(steps):
            done = compiled(statement, self.dialect)
            parameters = done.parameters(values)
            self._announce(done.sql, parameters)
            plans.append((done, parameters, index < len(fetch) and fetch[index]))
        try:
            return await (self._run_sqlite(plans, commit) if self._sqlite else self._run_asyncpg(plans, commit))
        except Conflict:
            raise
        except Exception as error:
            await self._check_disconnect(error)
            raise

    async def _run_sqlite(self, plans: list[tuple[Compiled, tuple[Any, ...], bool]],
                          commit: bool) -> list[list[list[Any]]]:
        raw = await self._driver._execute(sqlite_steps, self._driver._conn,
                                          [(done.sql, parameters, want) for done, parameters, want in plans], commit)
        if raw is None:
            raise Conflict
        return [[done.row(r) for r in rows] for (done, _p, _w), rows in zip(plans, raw, strict=True)]

    async def _run_asyncpg(self, plans: list[tuple[Compiled, tuple[Any, ...], bool]],
                           commit: bool) -> list[list[list[Any]]]:
        adapter = self._adapter
        if adapter._transaction is None:
            await adapter._start_transaction()
        out = []
        try:
            for done, parameters, want in plans:
                if want:
                    out.append([done.row(r) for r in await self._driver.fetch(done.sql, *parameters)])
                else:
                    await self._driver.execute(done.sql, *parameters)
                    out.append([])
        except self._unique_violation():
            await self.rollback()
            raise Conflict from None
        if commit:
            await self.commit()
        return out

    async def _check_disconnect(self, error: Exception) -> None:
        """What SQLAlchemy does with a statement's error, which it does not see here: a lost connection
        is invalidated, and with it every pooled connection as old (they are replaced on checkout)
        instead of failing the next turns too."""
        try:
            self._adapter._handle_exception(error)  # raises the DBAPI-level error SQLAlchemy would see
        except Exception as translated:
            if self.dialect.is_disconnect(translated, self._adapter, None):  # type: ignore[arg-type]
                await greenlet_spawn(self._engine.sync_engine.pool._invalidate, self._fairy, translated)

    def _unique_violation(self) -> type[Exception]:
        return self._adapter.dbapi.asyncpg.UniqueViolationError  # type: ignore[no-any-return]

    async def commit(self) -> None:
        """COMMIT. On PostgreSQL a turn that wrote only its own bookkeeping (the message id's claim, the
        stored replies, the dialog state, the identity's last contact) does not wait for the WAL's flush
        to disk (``synchronous_commit = off`` for this transaction): that wait was most of a read-only
        turn's p99. A crash can lose the last fraction of a second of such commits, never a partial
        one — the same trade SQLite makes here with WAL and ``synchronous=NORMAL`` — and what it loses
        is harmless: a platform's retry runs the read again, "2" may pick from the previous menu. Any
        other write (a feature's, through the session) keeps the commit durable."""
        if self._sqlite:
            await self._driver._execute(self._driver._conn.commit)
        elif self._adapter._transaction is not None:
            if not self.durable:
                await self._driver.execute(_LIGHT_COMMIT)
            await self._adapter._call_and_discard(self._adapter._transaction.commit)

    async def rollback(self) -> None:
        """Undo the driver-level transaction (a no-op when none is open). Shielded: a cancelled turn still
        rolls back, or the pooled SQLite connection would keep the write lock."""
        await asyncio.shield(self._rollback())

    async def _rollback(self) -> None:
        if self._sqlite:
            await self._driver._execute(_sqlite_rollback, self._driver._conn)
        elif self._adapter._transaction is not None:
            await self._adapter._call_and_discard(self._adapter._transaction.rollback)
