"""Lean start: how long ``volunteer-bot serve`` takes to answer /healthz, and its idle memory.

    .venv/bin/python bench/bench_start.py                # SQLite, Telegram off and on (webhook), 3 starts each
    .venv/bin/python bench/bench_start.py --db postgresql --runs 5
    .venv/bin/python bench/bench_start.py --telegram off,webhook,polling --source /tmp/main --source .

Each start is a fresh ``volunteer-bot serve`` process on a free port; the clock runs from the
process start to the first ``200`` of ``GET /healthz``; the resident set (VmRSS) is read after
``--idle`` seconds without traffic. The database is migrated once before the first measured start
(SQLite migrates on start; PostgreSQL must be current). "Telegram on" uses a webhook URL and an API
base that refuses connections, so nothing waits on the network; WeChat is on in both. ``--telegram``
picks the modes: off, webhook, polling (no webhook URL: getUpdates, failing and backing off).
Several ``--source`` checkouts are measured interleaved (one start of each in turn, each on its own
database), so a change in the machine's load falls on all of them alike; each checkout is started once
unmeasured first (``--warmup``): a fresh export has no bytecode caches yet, and its first start compiles them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_wechat import stop_server  # noqa: E402
from harness import free_port, rss_mib  # noqa: E402

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/vb_bench")


MODES = ("off", "webhook", "polling")


def environment(database_url: str, *, telegram: str, data_dir: Path) -> dict[str, str]:
    """``telegram``: one of ``MODES``."""
    env = {**os.environ, "DATABASE_URL": database_url, "ID_ENCRYPTION_KEY": "bench-key-0123456789abcdef",
           "WECHAT_TOKEN": "benchtoken", "LOG_LEVEL": "WARNING", "SCHEDULER_LOCK_FILE": str(data_dir / "lock"),
           "TELEGRAM_BOT_TOKEN": "", "TELEGRAM_WEBHOOK_URL": ""}
    if telegram != "off":
        env.update(TELEGRAM_BOT_TOKEN="123456:bench", TELEGRAM_API_BASE="http://127.0.0.1:9")
    if telegram == "webhook":
        env.update(TELEGRAM_WEBHOOK_URL="https://bench.invalid/telegram")
    return env


def modes(value: str) -> list[str]:
    chosen = [m.strip() for m in value.split(",") if m.strip()]
    unknown = set(chosen) - set(MODES)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(MODES)} (comma-separated)")
    return chosen


def serve_command(source: Path) -> list[str]:
    """``volunteer-bot serve`` of the code in ``source`` (default: this checkout)."""
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(source)!r}); from bot.cli import main; main()",
            "serve"]


def start_once(env: dict[str, str], idle: float, cwd: Path, source: Path) -> tuple[float, float]:
    port = free_port()
    began = time.perf_counter()
    proc = subprocess.Popen([*serve_command(source), "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.02)
        ready = time.perf_counter() - began
        time.sleep(idle)
        return ready, rss_mib(proc.pid)
    finally:
        stop_server(proc)


async def migrate(url: str, source: Path) -> None:
    sys.path.insert(0, str(REPO))
    from bench.harness import migrate_checkout
    from bot.runtime import upgrade_schema
    from models.db import create_engine

    if source != REPO:  # the other checkout's own migrations
        await asyncio.to_thread(migrate_checkout, source, url)
        return
    engine = create_engine(url)
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading RSS")
    parser.add_argument("--source", type=Path, action="append",
                        help="the checkout whose serve to start (e.g. an export of an older commit); repeat it to "
                             "measure several interleaved (default: this checkout)")
    parser.add_argument("--telegram", type=modes, default=["off", "webhook"],
                        help="Telegram modes to start, comma-separated: off, webhook, polling (default: off,webhook)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured starts of each checkout first")
    args = parser.parse_args()
    sources: list[Path] = [s.resolve() for s in args.source or [REPO]]
    with tempfile.TemporaryDirectory() as tmp:
        urls: list[str] = []
        for n, source in enumerate(sources):
            if args.db == "sqlite":
                urls.append(f"sqlite+aiosqlite:///{Path(tmp) / f'bench{n}.db'}")
            else:  # one database: the checkouts must share its schema
                urls.append(PG_URL)
            asyncio.run(migrate(urls[-1], source))
            for _ in range(args.warmup):
                start_once(environment(urls[-1], telegram=args.telegram[-1], data_dir=Path(tmp)), 0, Path(tmp), source)
        print(f"serve start, {args.db}, {args.runs} runs, load average {os.getloadavg()[0]:.1f}")
        for telegram in args.telegram:
            results: dict[Path, list[tuple[float, float]]] = {source: [] for source in sources}
            for _ in range(args.runs):
                for source, url in zip(sources, urls, strict=True):
                    data_dir = Path(tmp)
                    env = environment(url, telegram=telegram, data_dir=data_dir)
                    results[source].append(start_once(env, args.idle, data_dir, source))
            for source in sources:
                ready = [r for r, _ in results[source]]
                rss = [m for _, m in results[source]]
                print(f"  Telegram {telegram:<7} {source}: /healthz after {statistics.median(ready):.2f} s "
                      f"(min {min(ready):.2f}, max {max(ready):.2f}); idle RSS {statistics.median(rss):.0f} MiB "
                      f"(min {min(rss):.0f}, max {max(rss):.0f})")


if __name__ == "__main__":
    main()
