"""Helpers shared by the benches that start server processes: scratch PostgreSQL databases, percentiles,
a process tree's resident memory.

New benches import from here (``bench_wechat.py`` keeps ``wait_ready`` / ``stop_server``, which
``bench_telegram.py`` and ``bench_start.py`` import from it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

PG_BASE = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (0–1) of ``values`` (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def pg_admin(sql: str, base_url: str = PG_BASE) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on the server of ``base_url``."""
    import asyncpg

    parsed = make_url(base_url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 password=parsed.password, database=parsed.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_pg_database(tag: str, base_url: str = PG_BASE) -> AsyncIterator[str]:
    """A fresh, empty database ``vb_bench_<tag>_<pid>`` on the server of ``base_url`` (dropped afterwards,
    connections and all); yields its URL."""
    name = f"vb_bench_{tag}_{os.getpid()}"
    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', base_url)
    await pg_admin(f'CREATE DATABASE "{name}"', base_url)
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', base_url)


def rss_mib(root: int) -> float:
    """Resident memory of a process and its descendants (from /proc), MiB."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{pid}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def migrate_checkout(source: Path, url: str) -> None:
    """Bring ``url``'s schema up with ``source``'s own migrations (another checkout's serve refuses a schema
    with revisions it does not know), in a process of that checkout."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(source)}
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], cwd=source, env=env, check=True,
                   capture_output=True)
