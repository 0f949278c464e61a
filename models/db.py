"""Async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from models.sqlite_driver import one_trip_dbapi

SessionFactory = async_sessionmaker[AsyncSession]


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    # a failing statement's error (and echo) shows the SQL but never its parameter values: those are
    # what people typed, ID numbers and phones included
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # wait for the single writer instead of failing with "database is locked"
        kwargs["connect_args"] = {"timeout": 30}
        # no ROLLBACK when a connection goes back to the pool: sessions and connections end their
        # own transaction on close (``Connection.close`` rolls back one left open, and then the pool
        # skips its reset), so the pool's reset only ever rolled back nothing, after every commit: a
        # round trip through aiosqlite's worker thread per turn
        kwargs["pool_reset_on_return"] = None
        # one worker-thread trip per statement instead of four (models/sqlite_driver.py)
        kwargs["module"] = one_trip_dbapi()
    else:
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        # no pool_pre_ping: it costs every checkout a round trip (BEGIN; ;ROLLBACK on asyncpg).
        # Connections are recycled before a server or proxy idle timeout cuts them, and a
        # connection that drops anyway is detected on its first statement: that message fails (the
        # platforms retry it) and the pool replaces every connection older than the disconnect.
        kwargs["pool_recycle"] = 1800
        # turns are bounded per process (CORE_CONCURRENCY, below the pool's 20): a wait for a connection
        # means something is wrong, and failing after 10 s beats holding a request for the default 30 s
        kwargs["pool_timeout"] = 10
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # with WAL, NORMAL is crash-safe for the application (only a power cut may lose the last commits)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
