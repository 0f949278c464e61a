"""Lean start: how long ``volunteer-bot serve`` takes to answer /healthz, and its idle memory.

    .venv/bin/python bench/bench_start.py                # SQLite, Telegram off and on, 3 starts each
    .venv/bin/python bench/bench_start.py --db postgresql --runs 5

Each start is a fresh ``volunteer-bot serve`` process on a free port; the clock runs from the
process start to the first ``200`` of ``GET /healthz``; the resident set (VmRSS) is read after
``--idle`` seconds without traffic. The database is migrated once before the first measured start
(SQLite migrates on start; PostgreSQL must be current). "Telegram on" uses a webhook URL and an API
base that refuses connections, so nothing waits on the network; WeChat is on in both.
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


def environment(database_url: str, *, telegram: bool, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "ID_ENCRYPTION_KEY": "bench-key-0123456789abcdef",
           "WECHAT_TOKEN": "benchtoken", "LOG_LEVEL": "WARNING", "SCHEDULER_LOCK_FILE": str(data_dir / "lock"),
           "TELEGRAM_BOT_TOKEN": "", "TELEGRAM_WEBHOOK_URL": ""}
    if telegram:
        env.update(TELEGRAM_BOT_TOKEN="123456:bench", TELEGRAM_WEBHOOK_URL="https://bench.invalid/telegram",
                   TELEGRAM_API_BASE="http://127.0.0.1:9")
    return env


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
    parser.add_argument("--source", type=Path, default=REPO,
                        help="the checkout whose serve to start (e.g. an export of an older commit)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}" if args.db == "sqlite" else PG_URL
        asyncio.run(migrate(url, args.source))
        print(f"serve start ({args.source}), {args.db}, {args.runs} runs, load average {os.getloadavg()[0]:.1f}")
        for telegram in (False, True):
            env = environment(url, telegram=telegram, data_dir=data_dir)
            results = [start_once(env, args.idle, data_dir, args.source) for _ in range(args.runs)]
            ready = [r for r, _ in results]
            rss = [m for _, m in results]
            print(f"  Telegram {'on ' if telegram else 'off'}: /healthz after {statistics.median(ready):.2f} s "
                  f"(min {min(ready):.2f}, max {max(ready):.2f}); idle RSS {statistics.median(rss):.0f} MiB "
                  f"(min {min(rss):.0f}, max {max(rss):.0f})")


if __name__ == "__main__":
    main()
