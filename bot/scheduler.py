"""Background services of ``serve``: the reminder scheduler and one outbox drainer per channel sender.

APScheduler 3 only decides *when* to look; what is due lives in the database (``services/reminders``
writes outbox rows under once-only keys), so its in-memory job store holds nothing worth keeping.
Exactly one scheduler, and one drainer per channel, runs per deployment (``bot.locks``); the other
``serve`` processes stand by and take over when the holder goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.registry import push_senders
from bot.config import Settings
from bot.locks import DeploymentLock
from bot.metrics import Metrics
from bot.outbox import DrainOptions, OutboxDrainer, QuietHours
from bot.runtime import Runtime
from bot.sender import ChannelSender
from models import utcnow
from services.calendar import load_defaults
from services.maintenance import prune_dedupe_keys
from services.reminders import queue_activity_reminders, queue_hours_reminders, queue_observance_reminders
from services.requests import escalate_unaccepted, remind_missed_visits

log = logging.getLogger(__name__)

DEFAULT_OBSERVANCES = Path(__file__).resolve().parent / "data" / "observances.json"
STANDBY_RETRY_SECONDS = 15.0  # how often a standby process tries to take a lock
LOCK_CHECK_SECONDS = 30.0  # how often the holder checks its lock's connection is alive
# a job that could not run on time (process busy, clock jump) still runs up to this late; the
# reminders themselves are found from the database, so a late run catches up on everything
MISFIRE_GRACE_SECONDS = 6 * 3600


def read_default_observances(path: Path = DEFAULT_OBSERVANCES) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


async def load_default_observances(runtime: Runtime, *, path: Path = DEFAULT_OBSERVANCES,
                                   overwrite: bool = False) -> tuple[int, int]:
    async with runtime.sessions() as session:
        try:
            counts = await load_defaults(session, read_default_observances(path), now=utcnow(), overwrite=overwrite)
            await session.commit()
        except IntegrityError:  # another process loaded them at the same moment
            await session.rollback()
            return 0, 0
    return counts


def drain_options(settings: Settings) -> DrainOptions:
    return DrainOptions(quiet=QuietHours.parse(settings.quiet_hours_start, settings.quiet_hours_end, settings.timezone))


class ReminderJobs:
    """The scheduler's jobs: each opens a session, writes what is due (outbox rows), commits.

    Running jobs are tracked so that shutdown lets them finish instead of cancelling a
    database call half-way (APScheduler's asyncio executor cancels on shutdown).
    """

    def __init__(self, runtime: Runtime, *, clock: Callable[[], datetime] = utcnow,
                 metrics: Metrics | None = None) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.clock = clock
        self.tz = ZoneInfo(runtime.settings.timezone)
        self.running: set[asyncio.Task[object]] = set()

    async def _run(self, what: str, work: Callable[[AsyncSession], Awaitable[int]], *, job: str = "other") -> int:
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        started = time.monotonic()
        try:
            async with self.runtime.sessions() as session:
                count = await work(session)
                await session.commit()
        finally:
            if task is not None:
                self.running.discard(task)
            if self.metrics is not None:
                self.metrics.job_seconds.labels(job).observe(time.monotonic() - started)
        if count:
            log.info("%s: %d", what, count)
        return count

    async def wait_idle(self, seconds: float = 10.0) -> None:
        if self.running:
            await asyncio.wait(set(self.running), timeout=seconds)

    async def observances(self) -> int:
        days = self.runtime.settings.reminder_days_before
        return await self._run("observance reminders queued", lambda session: queue_observance_reminders(
            session, now=self.clock(), tz=self.tz, default_days_before=days), job="observances")

    async def activities(self) -> int:
        return await self._run("activity reminders queued", lambda session: queue_activity_reminders(
            session, now=self.clock(), tz=self.tz), job="activities")

    async def hours(self) -> int:
        return await self._run("record-hours reminders queued", lambda session: queue_hours_reminders(
            session, now=self.clock(), tz=self.tz), job="hours")

    async def requests(self) -> int:
        async def work(session: AsyncSession) -> int:
            escalated = await escalate_unaccepted(session, now=self.clock())
            visits = await remind_missed_visits(session, now=self.clock())
            return len(escalated) + sum(len(ids) for ids in visits.values())

        return await self._run("request escalations and visit reminders", work, job="requests")

    async def housekeeping(self) -> int:
        return await self._run("old dedupe keys pruned", lambda session: prune_dedupe_keys(session, now=self.clock()),
                               job="housekeeping")


def build_scheduler(jobs: ReminderJobs, *, timezone: str) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        timezone=timezone,
        job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS, "max_instances": 1},
    )
    now = datetime.now(ZoneInfo(timezone))
    # every job also runs once at start: after a restart nothing waits for the next tick
    scheduler.add_job(jobs.observances, "cron", hour="8-20", minute=5, id="observances", next_run_time=now)
    scheduler.add_job(jobs.activities, "interval", minutes=5, id="activities", next_run_time=now)
    scheduler.add_job(jobs.hours, "cron", hour="9-18", minute=15, id="hours", next_run_time=now)
    scheduler.add_job(jobs.requests, "interval", minutes=15, id="requests", next_run_time=now)
    scheduler.add_job(jobs.housekeeping, "cron", hour=3, minute=30, id="housekeeping")
    return scheduler


class BackgroundServices:
    """Started on app startup, stopped on cleanup; each piece waits for its lock before working."""

    def __init__(self, runtime: Runtime, *, senders: list[ChannelSender] | None = None) -> None:
        self.runtime = runtime
        self.senders = senders if senders is not None else push_senders(runtime)
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.scheduler: AsyncIOScheduler | None = None
        self.drainers: dict[str, OutboxDrainer] = {}

    def _lock(self, name: str) -> DeploymentLock:
        return DeploymentLock(self.runtime.db, name=name, lock_file=self.runtime.settings.scheduler_lock_file)

    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._lead_scheduler(), name="reminder-scheduler"))
        for sender in self.senders:
            self.tasks.append(asyncio.create_task(self._lead_outbox(sender), name=f"outbox-{sender.channel}"))

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=15)
        for sender in self.senders:
            with contextlib.suppress(Exception):
                await sender.close()

    async def _wait_stop(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        return self.stop.is_set()

    async def _acquire(self, lock: DeploymentLock) -> bool:
        while not self.stop.is_set():
            try:
                if await lock.try_acquire():
                    return True
            except Exception:
                log.exception("could not try the %s lock", lock.name)
            if await self._wait_stop(STANDBY_RETRY_SECONDS):
                break
        return False

    async def _hold(self, lock: DeploymentLock) -> None:
        """Return when asked to stop or when the lock is lost."""
        while not await self._wait_stop(LOCK_CHECK_SECONDS):
            if not await lock.still_held():
                return

    async def _lead_scheduler(self) -> None:
        lock = self._lock("scheduler")
        while await self._acquire(lock):
            log.info("this process runs the reminder scheduler")
            await load_default_observances(self.runtime)
            jobs = ReminderJobs(self.runtime, metrics=self.runtime.metrics)
            scheduler = build_scheduler(jobs, timezone=self.runtime.settings.timezone)
            self.scheduler = scheduler
            scheduler.start()
            try:
                await self._hold(lock)
            finally:
                scheduler.pause()
                await jobs.wait_idle()
                scheduler.shutdown(wait=False)
                self.scheduler = None
                await lock.release()

    async def _lead_outbox(self, sender: ChannelSender) -> None:
        lock = self._lock(f"outbox-{sender.channel}")
        while await self._acquire(lock):
            log.info("this process sends the %s outbox", sender.channel)
            drainer = OutboxDrainer(self.runtime.sessions, sender, options=drain_options(self.runtime.settings))
            self.drainers[sender.channel] = drainer
            stop_drain = asyncio.Event()
            try:
                await drainer.recover_unknown()
                drain = asyncio.create_task(drainer.run(stop_drain))
                await self._hold(lock)
                stop_drain.set()
                await drain
            except Exception:
                log.exception("%s outbox drainer stopped", sender.channel)
                await lock.release()
                await self._wait_stop(STANDBY_RETRY_SECONDS)
            finally:
                await lock.release()


SERVICES_KEY = web.AppKey("background_services", BackgroundServices)


async def setup(app: web.Application, runtime: Runtime) -> None:
    """Registered in bot/serve.py: the scheduler and the outbox drainers run inside ``serve``."""
    services = BackgroundServices(runtime)
    app[SERVICES_KEY] = services

    async def on_startup(_app: web.Application) -> None:
        await services.start()

    async def on_cleanup(_app: web.Application) -> None:
        await services.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
