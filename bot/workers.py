"""``volunteer-bot serve --workers N``: N processes answering on one port (``SO_REUSEPORT``).

The kernel spreads new connections over the workers. Each worker is a whole ``serve`` (its own event
loop, database pool and admission queue); the scheduler and each outbox sender still run in exactly
one of them through the deployment locks (``bot.locks``), the others standing by. PostgreSQL only:
SQLite has one writer, and more processes would only queue on its lock.

Metrics: the parent points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start,
so ``GET /metrics`` on any worker reports the sum of all of them (``bot.metrics``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
from multiprocessing.connection import wait as wait_for_any
from multiprocessing.process import BaseProcess
from types import FrameType

from bot.metrics import MULTIPROC_ENV
from models.db import is_sqlite

log = logging.getLogger(__name__)
STOP_SECONDS = 60.0  # a worker drains its queue on SIGTERM; after this it is killed
SQLITE_REFUSAL = ("--workers > 1 needs PostgreSQL (DATABASE_URL=postgresql+asyncpg://…): SQLite has one writer, "
                  "so run a single process")


def refusal(database_url: str, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve this database, or None."""
    if workers > 1 and is_sqlite(database_url):
        return SQLITE_REFUSAL
    return None


def _worker(host: str, port: int, log_level: str) -> None:
    import asyncio

    from bot.commands.common import load_settings, setup_logging
    from bot.serve import run_server

    setup_logging(log_level, f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM
    asyncio.run(run_server(load_settings(), host=host, port=port, reuse_port=True))


def run_workers(*, host: str, port: int, workers: int, log_level: str) -> int:
    """Start ``workers`` processes on host:port and wait; SIGINT/SIGTERM stop them all. Returns the
    exit code (non-zero when a worker failed)."""
    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="volunteer-bot-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir  # inherited by the workers before they import prometheus_client
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no event loop or pool inherited
    processes: list[BaseProcess] = [context.Process(target=_worker, args=(host, port, log_level),
                                                    name=f"serve-worker-{n}") for n in range(workers)]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        log.info("serving on http://%s:%s with %d workers (pids %s)", host, port, workers,
                 ", ".join(str(p.pid) for p in processes))
        # one worker ending on its own (a crash) stops the rest: a half-size deployment should be noticed
        while all(p.exitcode is None for p in processes):
            wait_for_any([p.sentinel for p in processes])
        if not stopping:
            log.error("a worker exited (%s); stopping the others", [p.exitcode for p in processes])
            stop(signal.SIGTERM, None)
        for process in processes:
            process.join(STOP_SECONDS)
            if process.exitcode is None:
                process.kill()
                process.join()
        return 0 if stopping and all(p.exitcode == 0 for p in processes) else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
