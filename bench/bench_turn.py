"""One engine turn's CPU cost, in process: ``Engine.handle`` with message ids on the console channel.

    .venv/bin/python bench/bench_turn.py                        # SQLite and PostgreSQL, 600 turns, 3 runs
    .venv/bin/python bench/bench_turn.py --db sqlite --turns 1000
    .venv/bin/python bench/bench_turn.py --db postgresql --profile   # top cProfile entries of one run
    .venv/bin/python bench/bench_turn.py --statements           # also SQL statements per turn, by kind
    .venv/bin/python bench/bench_turn.py --source /tmp/old      # the engine of another checkout

The mix, in turn: 帮助, 活动 and 我的时长 from registered volunteers, and a registration step
(注册 → name → ID number → phone, each from a new person). Turns run one after another (no
concurrency), so CPU ms per turn is ``time.process_time`` (all of this process's threads, the
aiosqlite worker included; not the PostgreSQL server's) over the run divided by its turns.
``--profile`` profiles the event loop's thread only (cProfile does not follow aiosqlite's worker).
``--statements`` counts, after the timed runs, the statements each kind sends (the engine's
``before_cursor_execute`` listeners, which the turn's driver-level statements also notify).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import PG_BASE, pg_admin  # noqa: E402

KINDS = ("帮助", "活动", "我的时长", "registration step")
REGISTRATION = ("注册", "张三", "<id>", "13800138000")


class Load:
    """The next (user, text, kind) of the mix; every registration step's person is new once per script."""

    def __init__(self, volunteers: list[str], tag: str) -> None:
        self.volunteers = volunteers
        self.tag = tag
        self._ids = itertools.count(1)
        self._newcomers = itertools.count(1)
        self._steps: Iterator[tuple[str, str]] = iter(())

    def _registration(self) -> Iterator[tuple[str, str]]:
        from handlers.validation import make_id_number

        while True:
            n = next(self._newcomers)
            user = f"new_{self.tag}_{n}"
            for text in REGISTRATION:
                yield user, make_id_number(f"110101{1960 + n % 40}0307{n % 1000:03d}") if text == "<id>" else text

    def turns(self, count: int) -> Iterator[tuple[str, str, str, str]]:
        steps = self._registration()
        for i in range(count):
            kind = KINDS[i % len(KINDS)]
            if kind == "registration step":
                user, text = next(steps)
            else:
                user, text = self.volunteers[i % len(self.volunteers)], kind
            yield user, text, kind, f"{self.tag}-{next(self._ids)}"


async def prepare(url: str) -> None:
    from bot.runtime import upgrade_schema
    from models import ActivityBase
    from models.db import create_engine, create_session_factory
    from services.activities import create_activity
    from services.people import get_or_create_identity, get_or_create_organization, grant_role

    engine = create_engine(url)
    await upgrade_schema(engine)
    sessions = create_session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        organization = await get_or_create_organization(session, name="花家地社区服务站")
        _, person = await get_or_create_identity(session, channel="console", external_id="coord", now=now)
        assert person.id is not None and organization.id is not None
        await grant_role(session, person_id=person.id, role="coordinator", organization_id=organization.id)
        for day in (2, 3, 5):
            start = now + timedelta(days=day)
            await create_activity(session, data=ActivityBase(
                title=f"社区敬老院探访{day}", description="陪老人聊天、读报", category="elderly", place="幸福敬老院",
                start_at=start, end_at=start + timedelta(hours=3), capacity=10, organization_id=organization.id),
                created_by=None, now=now)
        await session.commit()
    await engine.dispose()


async def bench(url: str, args: argparse.Namespace) -> None:
    from handlers.context import CoreOptions
    from handlers.engine import Engine
    from handlers.messages import Inbound
    from handlers.validation import make_id_number
    from models.db import create_engine, create_session_factory

    await prepare(url)
    engine = create_engine(url)
    core = Engine(create_session_factory(engine), CoreOptions(encryption_key="bench-key-0123456789abcdef"))

    async def handle(user: str, text: str, message_id: str) -> None:
        replies = await core.handle(Inbound(channel="console", user_id=user, text=text, message_id=message_id))
        assert replies, (user, text)

    volunteers = [f"vol{n}" for n in range(20)]
    for n, user in enumerate(volunteers):  # registered before the clock starts
        for k, text in enumerate(("注册", "张三", make_id_number(f"11010119900307{n:03d}"), "13800138000",
                                  "1,3", "花家地社区", "1")):
            await handle(user, text, f"setup-{n}-{k}")
    await run_turns(Load(volunteers, "warm"), handle, args.turns // 4, profile=False)  # caches, pool, catalogs

    name = make_url(url).get_backend_name()
    for run in range(1, args.runs + 1):
        profile = args.profile and run == args.runs
        cpu, wall, per_kind = await run_turns(Load(volunteers, f"r{run}"), handle, args.turns, profile=profile)
        kinds = "  ".join(f"{kind} {sum(v) / len(v) * 1000:.2f}" for kind, v in per_kind.items())
        print(f"{name:10} run {run}: {cpu / args.turns * 1000:6.2f} CPU ms/turn  {args.turns / wall:7.1f} turns/s"
              f"  (CPU ms by kind: {kinds})", flush=True)
    if args.statements:
        await count_statements(engine, Load(volunteers, "count"), handle, name)
    await engine.dispose()


async def count_statements(engine, load: Load, handle, name: str) -> None:  # noqa: ANN001
    """Mean SQL statements per turn by kind, over 80 turns of the mix (untimed: the listener costs CPU)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(_conn, _cursor, statement, *_rest) -> None:  # noqa: ANN001
        seen.append(statement)

    per_kind: dict[str, list[int]] = defaultdict(list)
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        for user, text, kind, message_id in load.turns(80):
            seen.clear()
            await handle(user, text, message_id)
            per_kind[kind].append(len(seen))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    kinds = "  ".join(f"{kind} {sum(v) / len(v):.2f}" for kind, v in per_kind.items())
    print(f"{name:10} statements/turn by kind: {kinds}", flush=True)


async def run_turns(load: Load, handle, count: int, *, profile: bool) -> tuple[float, float, dict[str, list[float]]]:  # noqa: ANN001
    per_kind: dict[str, list[float]] = defaultdict(list)
    # CPU time, not wall: a turn's waits on the database are not its cost
    profiler = cProfile.Profile(time.process_time) if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for user, text, kind, message_id in load.turns(count):
        began = time.process_time()
        await handle(user, text, message_id)
        per_kind[kind].append(time.process_time() - began)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if profiler:
        out = io.StringIO()
        profiler.dump_stats(Path(tempfile.gettempdir()) / "bench_turn.prof")  # for pstats / snakeviz
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
        # a steadier figure than CPU time on a busy machine: Python function calls per turn
        print(f"{stats.total_calls / count:.0f} Python function calls per turn (cProfile)")  # type: ignore[attr-defined]
    return cpu, wall, per_kind



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--turns", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries of the last run")
    parser.add_argument("--statements", action="store_true", help="count SQL statements per turn by kind")
    parser.add_argument("--source", type=Path, default=REPO, help="the checkout whose engine runs")
    args = parser.parse_args()
    sys.path.insert(0, str(args.source.resolve()))
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"source {args.source}", flush=True)
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(bench(f"sqlite+aiosqlite:///{tmp}/bench.db", args))
    if args.db in ("postgresql", "both"):
        name = f"bench_turn_{uuid.uuid4().hex[:8]}"
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
        try:
            asyncio.run(bench(make_url(PG_BASE).set(database=name).render_as_string(hide_password=False), args))
        finally:
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
