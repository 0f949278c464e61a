"""Outbox bench: queue a broadcast to 100,000 volunteers, then drain samples of it through the real
Telegram sender against the fake Bot API (in its own process) at configured rates.

    .venv/bin/python bench/bench_outbox.py [--volunteers 100000] [--seconds 8] [--database-url URL] [--profile]

Prints: time to queue; achieved/configured rate at 1000/s and 30/s (each a bounded sample of the
queue) and the drainer's CPU, beside the baseline: a bare aiohttp loop POSTing the same sendMessage
JSON to the same fake API at the same rate (no database, no outbox); the most messages sent in any
one second at 30/s; on PostgreSQL the plan of the claim query; peak memory. ``--profile``: the 1,000/s
sample under cProfile (the top functions by own time and by cumulative time, and the calls per message).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from bot.channels.telegram.sender import TelegramSender, make_bot  # noqa: E402
from bot.outbox import DrainOptions, OutboxDrainer  # noqa: E402
from bot.runtime import upgrade_schema  # noqa: E402
from bot.sender import OutboundMessage, SendResult  # noqa: E402
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


TOKEN = "123456:TEST-token_for-the-fake-api"


class TimedSender:
    """The real sender, noting when each sendMessage call starts (for the busiest-second count)."""

    def __init__(self, inner: TelegramSender) -> None:
        self.inner = inner
        post = inner._post

        async def timed_post(body: bytes) -> SendResult | None:  # when each HTTP call really starts
            self.started.append(time.monotonic())
            return await post(body)

        inner._post = timed_post  # type: ignore[method-assign]
        self.channel = inner.channel
        self.rate_per_second = inner.rate_per_second
        self.per_chat_interval = inner.per_chat_interval
        self.started: list[float] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        return await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()


def busiest_second(times: list[float]) -> int:
    window: deque[float] = deque()
    best = 0
    for at in sorted(times):
        window.append(at)
        while window[0] <= at - 1.0:
            window.popleft()
        best = max(best, len(window))
    return best


async def drain_sample(url: str, api_base: str, rate: float, seconds: float,
                       profile: cProfile.Profile | None = None) -> tuple[int, float, float, int]:
    """(sent, seconds, CPU seconds of this process, most sends started in one second)."""
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    sender = TimedSender(TelegramSender(make_bot(TOKEN, api_base), global_rate=rate, per_chat_interval=1.0,
                                        owns_bot=True))
    drainer = OutboxDrainer(sessions, sender, options=DrainOptions())
    stop = asyncio.Event()
    cpu = time.process_time()
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    task = asyncio.create_task(drainer.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    if profile is not None:
        profile.disable()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await sender.close()
    await engine.dispose()
    return drainer.stats.sent, elapsed, cpu, busiest_second(sender.started)


async def bare_post_loop(api_base: str, rate: float, seconds: float) -> tuple[int, float, float]:
    """The baseline: sendMessage JSON POSTs at ``rate`` on one aiohttp session, nothing else."""
    url = f"{api_base}/bot{TOKEN}/sendMessage"
    sent = 0

    async def post(http: aiohttp.ClientSession, chat_id: int) -> None:
        nonlocal sent
        async with http.post(url, json={"chat_id": chat_id, "text": "【基准测试站】3.12 植树节 需要 20 名志愿者"}) as resp:
            if (await resp.json())["ok"]:
                sent += 1

    cpu = time.process_time()
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        tasks = []
        count = int(rate * seconds)
        for i in range(count):
            wait = started + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(post(http, 100_000 + i)))
        await asyncio.gather(*tasks)
    return sent, time.perf_counter() - started, time.process_time() - cpu


def print_profile(profile: cProfile.Profile, sent: int) -> None:
    stats = pstats.Stats(profile)
    calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
    print(f"profile: {calls:,} Python function calls, {calls / max(sent, 1):,.0f} per message")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(25)
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


async def explain_claim(url: str) -> None:
    """The claim query's plan (PostgreSQL): it must walk ``ix_delivery_due``, not sort the table."""
    if not url.startswith("postgresql"):
        return
    engine = create_engine(url)
    async with engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE delivery"))
        plan = await conn.execute(sa.text(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM delivery WHERE status = 'pending' AND channel = 'telegram' "
            "AND due_at <= now() ORDER BY due_at, id LIMIT 100 FOR UPDATE SKIP LOCKED"))
        print("claim query plan:\n  " + "\n  ".join(row[0] for row in plan))
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each drain sample")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--profile", action="store_true", help="cProfile the 1,000/s sample")
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
        await explain_claim(url)
        print(f"load average before the samples: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for rate in (1000.0, 30.0):
            sent, elapsed, cpu = await bare_post_loop(api_base, rate, min(args.seconds, 4.0))
            print(f"baseline bare aiohttp POST loop at {rate:,.0f}/s: {sent / elapsed:,.1f}/s "
                  f"({sent / elapsed / rate:.0%}), CPU {cpu / elapsed:.0%} of a core")
            # the main thread's CPU time, not wall time: waits (for the GIL, for aiosqlite's worker thread) count nothing
            profile = cProfile.Profile(time.thread_time) if args.profile and rate == 1000.0 else None
            sent, elapsed, cpu, busiest = await drain_sample(url, api_base, rate, args.seconds, profile)
            achieved = sent / elapsed
            print(f"outbox drain at configured {rate:,.0f}/s: sent {sent:,} in {elapsed:.1f} s → {achieved:,.1f}/s "
                  f"({achieved / rate:.0%} of configured), CPU {cpu / elapsed:.0%} of a core, "
                  f"{cpu / max(sent, 1) * 1000:.2f} ms CPU per message, busiest second {busiest} sends"
                  + (" (under cProfile: slower)" if profile is not None else ""))
            if profile is not None:
                print_profile(profile, sent)
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
