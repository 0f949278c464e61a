"""Outbox bench: queue a broadcast to 100,000 volunteers, then drain samples of it through the real
Telegram sender against the fake Bot API (in its own process) at configured rates.

    .venv/bin/python bench/bench_outbox.py [--volunteers 100000] [--seconds 8] [--database-url URL]

Prints: time to queue; achieved/configured rate at 1000/s and 30/s (each a bounded sample of the
queue); peak memory (tracemalloc while queueing, and the process's max RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.channels.telegram.sender import TelegramSender, make_bot  # noqa: E402
from bot.outbox import DrainOptions, OutboxDrainer  # noqa: E402
from bot.runtime import upgrade_schema  # noqa: E402
from models import Activity, Identity, Organization, Person, Signup  # noqa: E402
from models.db import create_engine, create_session_factory  # noqa: E402
from services.broadcasts import progress, queue_broadcast  # noqa: E402

FAKE_SERVER = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from tests.fakes.telegram_api import FakeTelegramAPI
async def main():
    api = FakeTelegramAPI()
    await api.start()
    print(api.base_url, flush=True)
    while True:
        await asyncio.sleep(1)
        api.calls.clear()  # the bench counts in the database; keep the fake's memory flat
asyncio.run(main())
"""


def start_fake_api() -> subprocess.Popen[str]:
    """The fake Bot API in its own process, so it does not share the drainer's CPU."""
    return subprocess.Popen([sys.executable, "-c", FAKE_SERVER, str(REPO)], stdout=subprocess.PIPE, text=True)


async def seed(url: str, volunteers: int) -> tuple[int, int]:
    engine = create_engine(url)
    await upgrade_schema(engine)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        org_id = (await conn.execute(sa.insert(Organization.__table__).values(name="基准测试站", kind="station")
                                     .returning(Organization.__table__.c.id))).scalar_one()
        activity_id = (await conn.execute(sa.insert(Activity.__table__).values(
            title="植树", description="", category="environment", place="公园", start_at=now + timedelta(days=3),
            end_at=now + timedelta(days=3, hours=3), capacity=volunteers, organization_id=org_id, status="open",
            created_at=now).returning(Activity.__table__.c.id))).scalar_one()
        first = (await conn.execute(sa.select(sa.func.coalesce(sa.func.max(Person.__table__.c.id), 0)))).scalar_one()
        chunk = 5000
        for offset in range(0, volunteers, chunk):
            ids = range(first + offset + 1, first + min(offset + chunk, volunteers) + 1)
            await conn.execute(sa.insert(Person.__table__), [
                {"id": i, "name": f"v{i}", "skills": "environment", "area": "花家地", "status": "active",
                 "registered_at": now, "created_at": now} for i in ids])
            await conn.execute(sa.insert(Identity.__table__), [
                {"channel": "telegram", "external_id": str(100000 + i), "person_id": i, "active": True,
                 "last_inbound_at": now, "created_at": now} for i in ids])
            await conn.execute(sa.insert(Signup.__table__), [
                {"activity_id": activity_id, "person_id": i, "status": "confirmed", "created_at": now,
                 "updated_at": now} for i in ids])
    await engine.dispose()
    return org_id, first + 1


async def drain_sample(url: str, api_base: str, rate: float, seconds: float) -> tuple[int, float]:
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    sender = TelegramSender(make_bot("123456:TEST-token_for-the-fake-api", api_base), global_rate=rate,
                            per_chat_interval=1.0, owns_bot=True)
    drainer = OutboxDrainer(sessions, sender, options=DrainOptions())
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(drainer.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    elapsed = time.perf_counter() - started
    await sender.close()
    await engine.dispose()
    return drainer.stats.sent, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each drain sample")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_outbox_")
    url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
    print(f"database: {url.split('@')[-1]}")

    t0 = time.perf_counter()
    org_id, author_id = await seed(url, args.volunteers)
    print(f"seeded {args.volunteers:,} volunteers in {time.perf_counter() - t0:.1f} s")

    engine = create_engine(url)
    sessions = create_session_factory(engine)
    tracemalloc.start()
    t0 = time.perf_counter()
    async with sessions() as session:
        broadcast = await queue_broadcast(session, author_id=author_id, organization_id=org_id, kind="org", value="",
                                          text="3.12 植树节 需要 20 名志愿者", now=datetime.now(UTC))
        await session.commit()
    queue_seconds = time.perf_counter() - t0
    _, queue_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"queued broadcast #{broadcast.id}: {broadcast.queued:,} outbox rows in {queue_seconds:.2f} s "
          f"({broadcast.queued / queue_seconds:,.0f} rows/s); tracemalloc peak {queue_peak / 2**20:.1f} MiB")
    await engine.dispose()

    fake = start_fake_api()
    try:
        assert fake.stdout is not None
        api_base = fake.stdout.readline().strip()
        for rate in (1000.0, 30.0):
            sent, elapsed = await drain_sample(url, api_base, rate, args.seconds)
            achieved = sent / elapsed
            print(f"drain at configured {rate:,.0f}/s: sent {sent:,} in {elapsed:.1f} s → {achieved:,.1f}/s "
                  f"({achieved / rate:.0%} of configured)")
    finally:
        fake.terminate()
        fake.wait(10)

    engine = create_engine(url)
    async with create_session_factory(engine)() as session:
        assert broadcast.id is not None
        p = await progress(session, broadcast_id=broadcast.id)
    await engine.dispose()
    print(f"progress: sent {p.sent:,}, pending {p.pending:,}, failed {p.failed:,}, held {p.held:,}")
    print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
