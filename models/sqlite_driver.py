"""SQLAlchemy's aiosqlite adapter with one trip to the worker thread per statement instead of four.

aiosqlite runs every call of the sqlite3 connection on its own worker thread, and each call is a
trip there and back through a queue, a future and the event loop's self-pipe. SQLAlchemy's adapter
makes four such trips for one statement (create the cursor, execute, fetch the rows, close the
cursor), which on a turn of five statements cost more CPU than the SQL itself. Here a statement is
one function run on the worker thread: cursor, execute, every row, close. What SQLAlchemy reads
afterwards (description, rowcount, lastrowid) is copied out in the same trip.

Server-side cursors (``stream``) keep SQLAlchemy's own cursor: they fetch in chunks on purpose.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_


class _Executed:
    """What SQLAlchemy reads from a DBAPI cursor once the statement ran, as plain values."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.arraysize = cursor.arraysize


def _execute(connection: sqlite3.Connection, operation: str,
             parameters: Any) -> tuple[_Executed, list[Any] | None]:
    """On the worker thread: the whole statement, its rows included."""
    cursor = connection.cursor()
    try:
        cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Executed(cursor), rows
    finally:
        cursor.close()


def _executemany(connection: sqlite3.Connection, operation: str, seq_of_parameters: Any) -> _Executed:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return _Executed(cursor)
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement is one worker-thread call; its rows are buffered like the
    stock cursor's. ``_cursor`` holds the executed statement's description and counts."""

    __slots__ = ()

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # no sqlite3 cursor yet: it is made, used and closed on the worker thread in execute()
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> Any:
        return self._cursor.lastrowid if self._cursor is not None else None

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            executed, rows = await_(self._connection._execute(_execute, self._connection._conn, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._cursor = executed  # type: ignore[assignment]
        self._rows = collections.deque(rows) if rows else collections.deque()

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            executed = await_(self._connection._execute(_executemany, self._connection._conn, operation,
                                                        seq_of_parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._cursor = executed  # type: ignore[assignment]
        self._rows = collections.deque()

    async def _async_soft_close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed on the worker thread, the rows are buffered."""

    def close(self) -> None:
        self._rows.clear()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def _idle(self) -> bool:
        """No transaction open: a COMMIT or ROLLBACK would do nothing but cost a worker-thread trip (every
        read-only session's close made one). ``in_transaction`` reads SQLite's autocommit flag, safe
        from this thread while no statement of this connection runs (a pooled connection has one user)."""
        connection = self._connection._connection
        return connection is not None and not connection.in_transaction

    def rollback(self) -> None:
        if not self._idle():
            super().rollback()

    def commit(self) -> None:
        if not self._idle():
            super().commit()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI module SQLAlchemy's dialect uses (``create_engine(module=...)``)."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
