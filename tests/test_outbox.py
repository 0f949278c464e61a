"""The outbox drain loop: outcomes, pauses, back-off, quiet hours, crash recovery, concurrent drainers,
the real Telegram sender against the fake Bot API (429), and a real sender process killed mid-broadcast."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot.channels.telegram.sender import TelegramSender, make_bot
from bot.outbox import UNKNOWN_OUTCOME, DrainOptions, OutboxDrainer, QuietHours
from bot.sender import OutboundMessage, SendResult
from models import Delivery, Identity
from models.db import SessionFactory, create_engine, create_session_factory
from services.broadcasts import queue_broadcast
from services.notify import notify_person
from tests.conftest import REPO
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramAPI
from tests.reminder_helpers import add_volunteers, org_with_activity


class LoopbackPlatform:
    """A tiny push API on 127.0.0.1: answers each recipient by a script of outcomes (default: sent)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, float]] = []  # (delivery id, recipient, monotonic time)
        self.script: dict[str, list[dict[str, Any]]] = {}
        self.server: TestServer | None = None

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((body["id"], body["to"], time.monotonic()))
        queue = self.script.get(body["to"])
        answer = queue.pop(0) if queue else {"outcome": "sent"}
        return web.json_response(answer)

    async def __aenter__(self) -> LoopbackPlatform:
        app = web.Application()
        app.router.add_post("/send", self._send)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/send"

    def received(self) -> Counter[str]:
        return Counter(to for _, to, _ in self.calls)


class LoopbackSender:
    """A ChannelSender that posts to the loopback platform (one HTTP session for all sends)."""

    channel = "telegram"

    def __init__(self, url: str, *, rate: float = 500.0, per_chat: float = 0.0) -> None:
        self.url = url
        self.rate_per_second = rate
        self.per_chat_interval = per_chat
        self.http = aiohttp.ClientSession()
        # (recipient, when the drainer called send, when the answer came back, the outcome): the
        # drainer's view, which is what its pacing and pauses are decided on
        self.sends: list[tuple[str, float, float, str]] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        started = time.monotonic()
        async with self.http.post(self.url, json={"id": message.delivery_id, "to": message.external_id,
                                                  "text": message.text}) as response:
            answer = await response.json()
        self.sends.append((message.external_id, started, time.monotonic(), answer["outcome"]))
        return SendResult(answer["outcome"], retry_after=answer.get("retry_after"),
                          pause_all=answer.get("pause_all", False), error=answer.get("error"))

    async def close(self) -> None:
        await self.http.close()


async def queue_notices(sessions: SessionFactory, people: list[int], *, urgent: bool = False,
                        text: str = "通知", delay: float = 0.0) -> None:
    due = datetime.now(UTC) + timedelta(seconds=delay)
    async with sessions() as session:
        for person_id in people:
            await notify_person(session, person_id=person_id, message=text, now=due, urgent=urgent)
        await session.commit()


async def statuses(sessions: SessionFactory) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.exec(select(Delivery, Identity).join(Identity, Identity.id == Delivery.identity_id))
        return {f"{identity.external_id}/{row.id}": row.status for row, identity in rows}


async def test_outcomes_are_recorded_and_each_row_is_sent_once(sessions) -> None:
    people = await add_volunteers(sessions, 6)
    await queue_notices(sessions, people)
    # a second row for the one who blocks us, due once the first answer is in
    await queue_notices(sessions, [people[1]], text="第二条", delay=0.1)
    async with LoopbackPlatform() as platform:
        platform.script = {
            "1001": [{"outcome": "blocked", "error": "Forbidden: bot was blocked by the user"}],
            "1002": [{"outcome": "failed", "error": "Bad Request: chat not found"}],
            "1003": [{"outcome": "held", "error": "outside the 48 h window"}],
            "1004": [{"outcome": "retry", "retry_after": 0.05, "error": "502"}],
        }
        sender = LoopbackSender(platform.url)
        drainer = OutboxDrainer(sessions, sender, options=DrainOptions(base_backoff=0.05))
        await drainer.drain_until_idle()
        await asyncio.sleep(0.2)
        await drainer.drain_until_idle()
        await sender.close()
    received = platform.received()
    assert received == {"1000": 1, "1001": 1, "1002": 1, "1003": 1, "1004": 2, "1005": 1}
    async with sessions() as session:
        rows = {(i.external_id, d.text): d for d, i in
                await session.exec(select(Delivery, Identity).join(Identity, Identity.id == Delivery.identity_id))}
        assert rows[("1000", "通知")].status == "sent" and rows[("1005", "通知")].sent_at is not None
        assert rows[("1001", "通知")].status == "failed" and "blocked" in rows[("1001", "通知")].last_error
        assert rows[("1001", "第二条")].status == "failed"  # never tried: the recipient blocked us
        assert rows[("1002", "通知")].status == "failed" and rows[("1002", "通知")].attempts == 1
        assert rows[("1003", "通知")].status == "held"
        assert rows[("1004", "通知")].status == "sent" and rows[("1004", "通知")].attempts == 2
        blocked = (await session.exec(select(Identity).where(Identity.external_id == "1001"))).one()
        assert blocked.active is False


async def test_pause_all_stops_every_send_until_the_pause_ends(sessions) -> None:
    people = await add_volunteers(sessions, 8)
    await queue_notices(sessions, people)
    async with LoopbackPlatform() as platform:
        platform.script = {"1000": [{"outcome": "retry", "retry_after": 0.4, "pause_all": True, "error": "429"}]}
        sender = LoopbackSender(platform.url, rate=50)
        drainer = OutboxDrainer(sessions, sender)
        await drainer.drain_until_idle()
        await sender.close()
    # The pause starts when the drainer reads the 429, not when the platform wrote it: sends already on
    # the wire then (at 50/s, the next one leaves 20 ms later; on a busy machine the 429 takes longer
    # than that to come back) cannot be called back and simply succeed. None may *start* in the pause.
    [pause_known] = [answered for _to, _started, answered, outcome in sender.sends if outcome == "retry"]
    started_in_pause = [s for s in sender.sends if pause_known <= s[1] < pause_known + 0.39]
    assert started_in_pause == []
    assert platform.received() == {**{str(1000 + n): 1 for n in range(1, 8)}, "1000": 2}
    assert set((await statuses(sessions)).values()) == {"sent"}
    assert drainer.stats.pauses == 1


async def test_rate_and_per_recipient_spacing_are_kept(sessions) -> None:
    people = await add_volunteers(sessions, 5)
    await queue_notices(sessions, people)
    await queue_notices(sessions, people[:1], text="又一条")  # two rows for 1000
    async with LoopbackPlatform() as platform:
        sender = LoopbackSender(platform.url, rate=20, per_chat=0.5)
        started = time.monotonic()
        await OutboxDrainer(sessions, sender).drain_until_idle()
        await sender.close()
    times = sorted(at for _, _, at in platform.calls)
    assert len(times) == 6
    # no send before its slot: the i-th arrives at least i/rate after the drain began (a busy machine
    # only pushes sends later, so this holds where gaps between neighbours would jitter)
    assert all(at - started >= i / 20 for i, at in enumerate(times))
    to_1000 = [at for _, to, at in platform.calls if to == "1000"]
    assert to_1000[1] - started >= 0.5  # the second message to one chat waits for the per-chat interval


async def test_quiet_hours_hold_non_urgent_rows_until_morning(sessions) -> None:
    people = await add_volunteers(sessions, 2)
    await queue_notices(sessions, people[:1], text="普通")
    await queue_notices(sessions, people[1:], text="紧急", urgent=True)
    night = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)  # 22:30 in Beijing
    now = [night]
    quiet = QuietHours.parse("21:30", "08:00", "Asia/Shanghai")
    assert quiet.active(night) and quiet.active(night + timedelta(hours=9)) is True  # 07:30
    assert not quiet.active(night + timedelta(hours=9, minutes=30))  # 08:00
    async with sessions() as session:  # rows were queued "now" (real time): make them due at night
        for row in await session.exec(select(Delivery)):
            row.due_at = night - timedelta(minutes=1)
            session.add(row)
        await session.commit()
    async with LoopbackPlatform() as platform:
        sender = LoopbackSender(platform.url)
        drainer = OutboxDrainer(sessions, sender, options=DrainOptions(quiet=quiet), clock=lambda: now[0])
        await drainer.drain_until_idle()
        assert platform.received() == {"1001": 1}
        now[0] = night + timedelta(hours=9, minutes=31)
        await drainer.drain_until_idle()
        await sender.close()
    assert platform.received() == {"1000": 1, "1001": 1}


async def test_rows_left_sending_by_a_dead_sender_are_not_resent(sessions) -> None:
    """Rows a dead drainer had claimed but not handed over are sent; the one in doubt is not."""
    people = await add_volunteers(sessions, 3)
    await queue_notices(sessions, people)
    async with sessions() as session:
        rows = list(await session.exec(select(Delivery).order_by(Delivery.id)))
        row, claimed = rows[0], rows[1]
        row.status, row.attempts, row.claimed_at = "sending", 1, datetime.now(UTC)
        claimed.status, claimed.attempts, claimed.claimed_at = "claimed", 1, datetime.now(UTC)
        session.add_all([row, claimed])
        await session.commit()
        stuck_id, claimed_id = row.id, claimed.id
    async with LoopbackPlatform() as platform:
        sender = LoopbackSender(platform.url)
        drainer = OutboxDrainer(sessions, sender)
        assert await drainer.recover_unknown() == 1
        await drainer.drain_until_idle()
        await sender.close()
    assert stuck_id not in {delivery_id for delivery_id, _, _ in platform.calls}
    assert claimed_id in {delivery_id for delivery_id, _, _ in platform.calls}
    assert len(platform.calls) == 2
    async with sessions() as session:
        stuck = await session.get(Delivery, stuck_id)
        assert stuck is not None and stuck.status == "failed" and stuck.last_error == UNKNOWN_OUTCOME


async def test_two_drainers_on_one_database_never_send_a_row_twice(db_url: str, sessions) -> None:
    people = await add_volunteers(sessions, 60)
    await queue_notices(sessions, people)
    other_engine = create_engine(db_url)
    try:
        async with LoopbackPlatform() as platform:
            senders = [LoopbackSender(platform.url, rate=400), LoopbackSender(platform.url, rate=400)]
            drainers = [OutboxDrainer(sessions, senders[0]),
                        OutboxDrainer(create_session_factory(other_engine), senders[1])]
            await asyncio.gather(*(d.drain_until_idle() for d in drainers))
            for sender in senders:
                await sender.close()
    finally:
        await other_engine.dispose()
    assert len(platform.calls) == 60
    assert Counter(delivery_id for delivery_id, _, _ in platform.calls).most_common(1)[0][1] == 1
    assert set((await statuses(sessions)).values()) == {"sent"}


async def test_telegram_429_pauses_the_real_sender_and_loses_nothing(sessions) -> None:
    people = await add_volunteers(sessions, 10)
    await queue_notices(sessions, people)
    async with FakeTelegramAPI() as api:
        api.fail("sendMessage", status=429, retry_after=1, times=1)
        sender = TelegramSender(make_bot(DEFAULT_TOKEN, api.base_url), global_rate=50, owns_bot=True)
        drainer = OutboxDrainer(sessions, sender)
        stats = await drainer.drain_until_idle()
        await sender.close()
    assert api.flood_violations == 0  # nothing was called while Telegram's retry_after lasted
    assert stats.pauses == 1 and stats.sent == 10
    assert {chat: len(api.sent_texts(chat_id=chat)) for chat in range(1000, 1010)} == {c: 1 for c in range(1000, 1010)}
    assert set((await statuses(sessions)).values()) == {"sent"}


def _drain_process(db_url: str, api_base: str, lock_file: Path, *, until_empty: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": db_url, "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_API_BASE": api_base,
           "TELEGRAM_GLOBAL_RATE": "10", "SCHEDULER_LOCK_FILE": str(lock_file), "LOG_LEVEL": "WARNING",
           "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00"}  # no quiet hours: the test runs at any time
    args = [sys.executable, "-m", "bot.cli", "outbox", "drain", "--channel", "telegram"]
    if until_empty:
        args.append("--until-empty")
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def test_sigkill_mid_broadcast_then_restart_nobody_gets_two_and_the_doubtful_are_marked(
        db_url: str, sessions, tmp_path: Path) -> None:
    org_id, activity = await org_with_activity(sessions, start=datetime.now(UTC) + timedelta(days=5))
    people = await add_volunteers(sessions, 25, activity_id=activity.id)
    async with sessions() as session:
        coordinator = await session.get(Identity, 1)
        assert coordinator is not None
        broadcast = await queue_broadcast(session, author_id=coordinator.person_id, organization_id=org_id,
                                          kind="org", value="", text="3.12 植树节 需要 20 名志愿者", now=datetime.now(UTC))
        await session.commit()
    assert broadcast.queued == len(people)
    async with FakeTelegramAPI() as api:
        first = _drain_process(db_url, api.base_url, tmp_path / "lock", until_empty=False)
        try:
            await api.wait_for("sendMessage", count=8, within=120)  # a busy machine starts the process slowly
        finally:
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
        assert first.returncode == -signal.SIGKILL
        before_restart = len(api.sent_texts())
        assert before_restart < len(people)  # it really died mid-way
        second = _drain_process(db_url, api.base_url, tmp_path / "lock", until_empty=True)
        out, err = await asyncio.to_thread(second.communicate, None, 180)
        assert second.returncode == 0, err.decode()
    per_chat = {chat: len(api.sent_texts(chat_id=chat)) for chat in range(1000, 1025)}
    assert set(per_chat.values()) <= {0, 1}  # nobody gets it twice
    async with sessions() as session:
        rows = list(await session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast.id)))
        identities = {i.id: i.external_id for i in await session.exec(select(Identity))}
    assert len(rows) == 25
    # a row the killed drainer had marked ``sending`` has an unknown outcome: failed and said so, never resent
    # (how many depends on how far behind its slots the killed process ran; on a quiet machine none or one);
    # every other recipient got the broadcast exactly once
    for row in rows:
        chat = int(identities[row.identity_id])
        if row.status == "failed":
            assert row.last_error == UNKNOWN_OUTCOME, (chat, row.last_error)
        else:
            assert (row.status, per_chat[chat]) == ("sent", 1), chat
    doubtful = [r for r in rows if r.status == "failed"]
    assert len(doubtful) < len(people) - before_restart  # the restart sent the rest
