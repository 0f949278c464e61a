"""One holder per deployment: a PostgreSQL advisory lock, or an fcntl file lock beside an SQLite database.

The scheduler and each channel's outbox sender run in exactly one process of a deployment; the other
processes stand by and try again from time to time, so one of them takes over when the holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.db import is_sqlite

log = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock (Python's hash() changes per process)."""
    return int.from_bytes(hashlib.blake2b(f"volunteer-bot:{name}".encode(), digest_size=8).digest(), "big",
                          signed=True)


class DeploymentLock:
    def __init__(self, engine: AsyncEngine, *, name: str, lock_file: str) -> None:
        self.engine = engine
        self.name = name
        self.key = advisory_key(name)
        self.path = Path(f"{lock_file}.{name}" if name != "scheduler" else lock_file)
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    async def try_acquire(self) -> bool:
        if self.held:
            return await self.still_held()
        url = self.engine.url.render_as_string(hide_password=False)
        if is_sqlite(url):
            return self._try_file()
        conn = await self.engine.connect()
        try:
            # autocommit: a session-level lock on a connection that never sits "idle in transaction"
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})).scalar())
        except Exception:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    def _try_file(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    async def still_held(self) -> bool:
        """False when the lock's connection died (the server may have given the lock to another process)."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.warning("lost the %s lock's connection: %s", self.name, exc)
            await self._drop_conn()
            return False

    async def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
            except Exception:  # the connection is already gone; nothing more to release
                pass

    async def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                await self._conn.close()
            except Exception:
                await self._drop_conn()
            self._conn = None
