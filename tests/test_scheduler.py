"""Activity and record-hours reminders, the deployment locks, the scheduler's settings, and two real
``serve`` processes on one PostgreSQL database sending each reminder once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp.test_utils import unused_port
from sqlmodel import select

from bot.locks import DeploymentLock
from bot.scheduler import MISFIRE_GRACE_SECONDS, ReminderJobs, build_scheduler
from models import Delivery, HourRecord, Signup
from models.db import create_engine
from services.reminders import queue_activity_reminders, queue_hours_reminders
from tests.conftest import REPO, _truncate
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramAPI
from tests.helpers import register
from tests.reminder_helpers import add_volunteers, org_with_activity

TZ = ZoneInfo("Asia/Shanghai")


async def run_activity_job(sessions, now: datetime) -> int:
    async with sessions() as session:
        count = await queue_activity_reminders(session, now=now, tz=TZ)
        await session.commit()
        return count


async def test_activity_reminders_24h_and_2h_once_with_confirm_and_cancel(console, sessions, clock) -> None:
    start = clock.now + timedelta(days=2)
    org_id, activity = await org_with_activity(sessions, start=start, capacity=1)
    alice, bob = console("alice"), console("bob")
    await register(alice, "王小丽", serial=101)
    await register(bob, "李雷", serial=102)
    await alice.send(f"/join {activity.id}")
    assert "候补" in await bob.send(f"/join {activity.id}")

    clock.advance(hours=22)  # 26 h before the start: nothing yet
    assert await run_activity_job(sessions, clock.now) == 0
    clock.advance(hours=3)  # 23 h before
    assert await run_activity_job(sessions, clock.now) == 1  # alice only (bob is on the waitlist)
    assert await run_activity_job(sessions, clock.now) == 0  # once
    reply = await alice.send("你好")
    assert "明天开始" in reply and "1. 确认参加" not in reply  # the notice is prepended to the next reply
    assert "确认参加" in reply
    assert "已确认参加" in await alice.send(f"/confirm {activity.id}")

    clock.advance(hours=21, minutes=30)  # 1.5 h before
    assert await run_activity_job(sessions, clock.now) == 1
    reply = await alice.send("帮助")
    assert "2 小时后开始" in reply
    # "取消报名" from the reminder frees the place and promotes the waitlist
    assert "已取消" in await alice.send(f"/leave {activity.id}")
    async with sessions() as session:
        statuses = {s.person_id: s.status for s in await session.exec(select(Signup))}
        assert sorted(statuses.values()) == ["cancelled", "confirmed"]
    assert "转为正式参加" in await bob.send("你好")


async def test_volunteers_can_switch_activity_reminders_off_by_message(console, sessions, clock) -> None:
    _, activity = await org_with_activity(sessions, start=clock.now + timedelta(hours=20))
    alice = console("alice")
    await register(alice, "王小丽", serial=101)
    clock.advance(days=-2)
    await alice.send(f"/join {activity.id}")
    clock.advance(days=2)
    reply = await alice.send("关闭活动提醒")
    assert "已关闭活动提醒" in reply and "活动提醒：关" in reply
    assert await run_activity_job(sessions, clock.now) == 0
    assert "已打開活動提醒" in await alice.send("開啟活動提醒")  # 繁體 works, and is answered in 繁體
    assert await run_activity_job(sessions, clock.now) == 1


async def test_coordinators_are_reminded_to_record_hours_two_days_after(console, sessions, clock) -> None:
    org_id, activity = await org_with_activity(sessions, start=clock.now - timedelta(days=3))
    await add_volunteers(sessions, 2, channel="console", activity_id=activity.id)
    await org_with_activity(sessions, org="别的服务站", coordinator="other", start=clock.now + timedelta(days=1))

    async def run(now: datetime) -> int:
        async with sessions() as session:
            count = await queue_hours_reminders(session, now=now, tz=TZ)
            await session.commit()
            return count

    assert await run(clock.now - timedelta(days=1)) == 0  # ended 2 days ago minus the 3 h it lasted
    assert await run(clock.now) == 1  # the coordinator of that organization, not the other one
    assert await run(clock.now) == 0
    reply = await console("coord").send("帮助")
    assert "还没有登记志愿时长" in reply and "10 个工作日" in reply

    _, recorded = await org_with_activity(sessions, org="第三站", coordinator="third", start=clock.now - timedelta(days=4))
    people = await add_volunteers(sessions, 1, channel="console", start_id=5000, activity_id=recorded.id)
    async with sessions() as session:
        session.add(HourRecord(person_id=people[0], activity_id=recorded.id, hours=3,
                               served_on=recorded.start_at.date()))
        await session.commit()
    assert await run(clock.now) == 0  # hours already recorded: no reminder


async def test_one_lock_holder_per_deployment(db_url: str, tmp_path: Path) -> None:
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        first = DeploymentLock(engines[0], name="scheduler", lock_file=str(tmp_path / "sched.lock"))
        second = DeploymentLock(engines[1], name="scheduler", lock_file=str(tmp_path / "sched.lock"))
        other = DeploymentLock(engines[1], name="outbox-telegram", lock_file=str(tmp_path / "sched.lock"))
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await other.try_acquire()  # a different lock
        assert await first.still_held()
        await first.release()
        assert await second.try_acquire()
        await second.release()
        await other.release()
    finally:
        for engine in engines:
            await engine.dispose()


async def test_scheduler_settings_survive_restarts() -> None:
    class FakeRuntime:  # only the attributes ReminderJobs reads
        class settings:  # noqa: N801
            timezone = "Asia/Shanghai"

    scheduler = build_scheduler(ReminderJobs(FakeRuntime()), timezone="Asia/Shanghai")  # type: ignore[arg-type]
    scheduler.start(paused=True)
    try:
        assert str(scheduler.timezone) == "Asia/Shanghai"
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"observances", "activities", "hours", "requests", "housekeeping"}
        for job in jobs.values():
            assert job.coalesce is True and job.misfire_grace_time == MISFIRE_GRACE_SECONDS >= 3600
        for name in ("observances", "activities", "hours", "requests"):
            assert jobs[name].next_run_time <= datetime.now(UTC) + timedelta(seconds=5)  # runs once at start
    finally:
        scheduler.shutdown(wait=False)


def _serve(db_url: str, api_base: str, lock_file: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    # INFO: each process says when it takes the scheduler lock. The log goes to a file, not a pipe that
    # nobody reads until the end (a full pipe would block the process mid-write).
    env = {**os.environ, "DATABASE_URL": db_url, "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_API_BASE": api_base,
           "TELEGRAM_WEBHOOK_URL": "", "SCHEDULER_LOCK_FILE": str(lock_file), "LOG_LEVEL": "INFO",
           "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


async def _ready(server: subprocess.Popen[bytes], port: int, *, within: float) -> None:
    """Until the process answers /healthz: its background services (the lock holders) have started.

    Starting takes seconds on an idle machine and a minute or more on a busy one (importing aiogram
    alone builds hundreds of pydantic models), so this waits for the answer, bounded only so that a
    process that never comes up fails the test instead of hanging it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession() as http:
        while True:
            assert server.poll() is None, f"serve exited with {server.returncode} before it was ready"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            assert loop.time() < deadline, f"serve on port {port} not ready after {within:.0f} s"
            await asyncio.sleep(0.25)


async def test_two_serve_processes_on_postgresql_send_each_reminder_once(postgres_url: str, tmp_path: Path) -> None:
    """Both processes are up before the sends are awaited, and everything is counted after both have
    exited (a clean shutdown finishes running jobs and drains): nothing can happen after the count, so
    no sleep is needed to give a duplicate time to appear."""
    await _truncate(postgres_url)
    engine = create_engine(postgres_url)
    from models.db import create_session_factory

    sessions = create_session_factory(engine)
    now = datetime.now(UTC)
    _, activity = await org_with_activity(sessions, start=now + timedelta(hours=20))
    await add_volunteers(sessions, 12, activity_id=activity.id, now=now)
    await engine.dispose()
    logs = [tmp_path / f"serve{n}.log" for n in range(2)]
    async with FakeTelegramAPI() as api:
        # separate lock files: only the database lock can keep the two apart
        ports = [unused_port() for _ in range(2)]
        servers = [_serve(postgres_url, api.base_url, tmp_path / f"lock{n}", ports[n], logs[n]) for n in range(2)]
        try:
            await asyncio.gather(*(_ready(server, port, within=300) for server, port in zip(servers, ports, strict=True)))
            for chat in range(1000, 1012):
                await api.wait_for_sent(chat, count=1, within=120)
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
            for server in servers:
                try:
                    await asyncio.to_thread(server.wait, 120)
                except subprocess.TimeoutExpired:
                    server.kill()
        texts = {chat: [t for t in api.sent_texts(chat_id=chat) if "活动提醒" in t] for chat in range(1000, 1012)}
    output = [log.read_text(errors="replace") for log in logs]
    assert {chat: len(found) for chat, found in texts.items()} == {chat: 1 for chat in range(1000, 1012)}
    assert all(server.returncode == 0 for server in servers), [text[-2000:] for text in output]
    assert sum(text.count("this process runs the reminder scheduler") for text in output) == 1, output
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            rows = list(await session.exec(select(Delivery).where(Delivery.source == "activity")))
            assert len(rows) == 12 and {r.status for r in rows} == {"sent"}
    finally:
        await engine.dispose()


async def test_request_and_housekeeping_jobs_run_their_services(sessions, clock) -> None:
    """The scheduler's request job escalates unaccepted requests; housekeeping prunes dedupe keys."""
    from sqlmodel import select

    from handlers.messages import Inbound
    from models import InboundSeen

    class Runtime:  # the attributes ReminderJobs reads
        class settings:  # noqa: N801
            timezone = "Asia/Shanghai"
            reminder_days_before = 3

    runtime = Runtime()
    runtime.sessions = sessions  # type: ignore[attr-defined]
    jobs = ReminderJobs(runtime, clock=clock)  # type: ignore[arg-type]
    from handlers.context import CoreOptions
    from handlers.engine import Engine
    from tests.conftest import TEST_KEY

    core = Engine(sessions, CoreOptions(encryption_key=TEST_KEY), clock=clock)
    await core.handle(Inbound(channel="test", user_id="u", text="帮助", message_id="m1"))
    clock.advance(days=8)
    assert await jobs.housekeeping() == 1
    assert await jobs.requests() == 0
    async with sessions() as session:
        assert list(await session.exec(select(InboundSeen))) == []


async def test_regression_shutdown_cancelled_a_job_mid_query(sessions) -> None:
    """serve's shutdown used to cancel a running reminder job inside a database call (APScheduler's
    asyncio executor cancels on shutdown), logging CancelledError and hanging the exit for seconds.
    Jobs are now tracked and shutdown waits for them."""
    import asyncio

    class Runtime:  # the attributes ReminderJobs reads
        class settings:  # noqa: N801
            timezone = "Asia/Shanghai"

    runtime = Runtime()
    runtime.sessions = sessions  # type: ignore[attr-defined]
    jobs = ReminderJobs(runtime)  # type: ignore[arg-type]
    finished: list[bool] = []

    async def slow_work(session) -> int:  # noqa: ANN001
        await asyncio.sleep(0.2)
        finished.append(True)
        return 1

    task = asyncio.create_task(jobs._run("slow job", slow_work))
    await asyncio.sleep(0.05)
    assert jobs.running  # the job is seen as running
    await jobs.wait_idle()
    assert finished == [True] and task.done() and not task.cancelled() and not jobs.running
