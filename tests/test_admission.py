"""Admission control in front of the core (bot/admission.py) and GET /metrics: the real /wechat endpoint
on loopback with a slowed core, a fake WeChat API for the replies that follow through the outbox."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families
from pytest import approx
from sqlmodel import select

from bot.admission import PRE_HANDLER_ROUNDS, Admission, Decision, LoopLag, TurnSlots
from handlers.engine import Engine, Handled
from handlers.messages import Inbound
from models import Delivery, InboundSeen
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.wechat_harness import SlowEngine, WeChatHarness, text_xml


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(wx: WeChatHarness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await wx.client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    return metric_samples(await response.text())


# ---- the admission queue on its own (no timing: turns wait on events) --------------------------------
class HeldWork:
    """Turns that finish when ``release`` is set; what ``finish_late`` delivered is in ``delivered``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.delivered: list[str] = []

    async def work(self) -> str:
        await self.release.wait()
        return "done"

    async def finish_late(self, result: str) -> None:
        self.delivered.append(result)


async def test_decisions_follow_the_queue_and_drain_cancels_cleanly() -> None:
    errors: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    admission = Admission(channel="test", concurrency=2, max_wait=3.0)
    admission.mean_turn = 1.0
    held = HeldWork()
    work, finish_late, release, results = held.work, held.finish_late, held.release, held.delivered
    decisions = []
    for n in range(7):
        decision = admission.decide(2.0)
        decisions.append(decision)
        if decision is not Decision.BUSY:
            admission.submit(f"m{n}", work, late=decision is Decision.LATE, finish_late=finish_late)
        await asyncio.sleep(0)  # let the job take its slot
    # 2 slots × 1 s: two rounds fit the 2 s budget, the third round only the 3 s limit
    assert decisions == [Decision.NOW] * 4 + [Decision.LATE] * 2 + [Decision.BUSY]
    assert admission.job("m0") is not None and admission.job("m6") is None
    release.set()
    await admission.wait_idle()
    assert results == ["done", "done"]  # only the late ones are finished by finish_late
    assert admission.in_flight == 0 and admission.expected_wait() <= 2.0

    release.clear()
    for n in range(4):
        admission.submit(f"q{n}", work, late=True, finish_late=finish_late)
    await asyncio.sleep(0)
    assert await admission.drain(grace=0) == 4  # still queued at shutdown: cancelled, logged
    assert admission.in_flight == 0
    await asyncio.sleep(0)
    assert errors == []  # nothing raised inside a done callback


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lagging(seconds: float) -> LoopLag:
    """A loop lag frozen at ``seconds`` (no timer runs)."""
    lag = LoopLag(monotonic=FakeClock())
    lag.seconds = seconds
    return lag


class GatedEngine(Engine):
    """The real core; each turn waits until ``gate`` is set (a queued message, without timing)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def handle_delivery(self, inbound: Inbound) -> Handled:
        self.entered.set()
        await self.gate.wait()
        return await super().handle_delivery(inbound)


def test_loop_lag_is_the_moving_mean_of_the_timer_s_lateness() -> None:
    clock = FakeClock()
    lag = LoopLag(monotonic=clock)
    assert lag.seconds == 0.0
    lag.observe(due=clock.now - 1.0)  # one long blocking call: the timer ran a second late
    assert lag.seconds == approx(0.2)  # counts once, with LAG_WEIGHT
    for _ in range(10):
        lag.observe(due=clock.now)  # on time again
    assert lag.seconds < 0.03
    lag.observe(due=clock.now + 1.0)  # early: counts as on time, never negative
    assert lag.seconds >= 0.0
    for _ in range(50):  # a loop busy at every round
        lag.observe(due=clock.now - 0.5)
    assert lag.seconds == approx(0.5, abs=0.001)


def test_a_lagging_loop_dates_requests_back_and_shortens_their_deadline() -> None:
    clock = FakeClock()
    lag = LoopLag(monotonic=clock)
    admission = Admission(channel="test", concurrency=2, max_wait=30.0, loop_lag=lag, monotonic=clock)
    admission.mean_turn = 0.1
    quiet = admission.open_request()
    assert quiet.arrived == clock.now and admission.time_left(quiet, 4.0) == approx(4.0)
    assert admission.decide(admission.time_left(quiet, 4.0) * 0.8) is Decision.NOW

    lag.seconds = 1.0  # the loop runs a second behind
    opened = admission.open_request()
    assert opened.arrived == approx(clock.now - PRE_HANDLER_ROUNDS * 1.0)  # it waited in the loop before the handler
    assert admission.expected_wait() == approx(0.1 + 1.0)  # the answer's way out through the loop counts too
    left = admission.time_left(opened, 4.0)
    assert left == approx(4.0 - PRE_HANDLER_ROUNDS * 1.0 - 1.0)
    assert admission.decide(left * 0.8) is Decision.LATE  # answered `success` at once, the reply follows
    clock.now += 0.5  # time in the handler counts against the deadline as well
    assert admission.time_left(opened, 4.0) == approx(left - 0.5)


async def test_overloaded_before_any_work_and_a_queued_job_can_be_made_late() -> None:
    admission = Admission(channel="test", concurrency=1, max_wait=30.0, max_open_requests=2, max_queue=2)
    requests = [admission.open_request() for _ in range(3)]
    assert admission.overloaded()  # three open, two allowed
    requests[0].close()
    requests[0].close()  # closing twice counts once
    assert not admission.overloaded()
    for opened in requests[1:]:
        opened.close()
    admission.loop_lag = lagging(admission.max_lag * 2)
    assert admission.overloaded()  # the loop lags too much: shed until it catches up
    admission.loop_lag = lagging(admission.max_lag / 2)
    assert not admission.overloaded()

    held = HeldWork()
    jobs = [admission.submit(f"m{n}", held.work, late=False, finish_late=held.finish_late) for n in range(3)]
    await asyncio.sleep(0)
    assert admission.overloaded()  # two waiting: the queue is full, admission would refuse
    assert admission.make_late(jobs[0]) and jobs[0].late
    held.release.set()
    await admission.wait_idle()
    assert held.delivered == ["done"]  # the job made late delivered its result itself
    assert not admission.make_late(jobs[1])  # finished: nothing to make late


# ---- the /wechat endpoint under overload ---------------------------------------------------------------
async def test_overload_answers_at_once_and_every_reply_arrives_once_through_the_outbox(
        sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    slow = SlowEngine(sessions, options, clock=clock, delay=0.3)
    async with WeChatHarness(slow, sessions, api, reply_deadline=1.0) as wx:
        # one turn at a time, each known to take ~0.3 s: a third waiting message cannot make 0.8 s
        wx.channel.admission = Admission(channel="wechat", concurrency=1, max_wait=60.0,
                                         metrics=wx.runtime.metrics)
        wx.channel.admission.mean_turn = slow.delay
        users = [f"o_load{n}" for n in range(8)]
        messages = {user: text_xml(user, "帮助", msg_id=880000 + n) for n, user in enumerate(users)}
        # every message twice at once: WeChat's retry of a queued message joins it
        answers = await asyncio.gather(*[wx.post(messages[user]) for user in users for _ in range(2)])
        assert all(answer.status == 200 for answer in answers)
        by_user = {user: answers[2 * n: 2 * n + 2] for n, user in enumerate(users)}
        early = [user for user, pair in by_user.items() if all(a.body == "success" for a in pair)]
        assert len(early) >= 4  # at most 2 of the 8 fit the deadline; a busy machine may miss more
        for pair in by_user.values():
            # both copies shared one turn (the same answer), or the copy came after that turn had
            # finished (SQLite: its nonce waits for the turn's write lock): then it is a repeat and
            # gets the stored reply in time or `success`, never a second message
            assert pair[0].content == pair[1].content or None in (pair[0].content, pair[1].content)
        await wx.channel.wait_idle()
        for user, pair in by_user.items():
            passive = [a.content for a in pair if a.content]
            late = api.sent_texts(user)
            # exactly one reply per message: passively, or once through the outbox
            assert len(late) + (1 if passive else 0) == 1, (user, passive, late)
            assert "我是志愿助手" in (late[0] if late else passive[0])
        async with sessions() as session:
            rows = (await session.exec(select(Delivery).where(Delivery.source == "late_reply"))).all()
            assert len(rows) == sum(len(api.sent_texts(user)) for user in users)
            assert {row.status for row in rows} == {"sent"}
            assert len((await session.exec(select(InboundSeen))).all()) == len(users)  # each turn once
        samples = await scrape(wx)
        wechat_label = (("channel", "wechat"),)
        assert samples[("volunteer_admission_answered_early_total", wechat_label)] >= 4
        assert samples[("volunteer_turn_seconds_count", wechat_label)] == len(users)
        assert samples[("volunteer_outbox_sent_total", wechat_label)] == len(rows)
        assert samples[("volunteer_admission_queued", wechat_label)] == 0


async def test_a_full_inbound_queue_asks_the_user_to_send_again(sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    slow = SlowEngine(sessions, options, clock=clock, delay=0.3)
    async with WeChatHarness(slow, sessions, api, reply_deadline=1.0) as wx:
        wx.channel.admission = Admission(channel="wechat", concurrency=1, max_wait=0.7,
                                         metrics=wx.runtime.metrics)
        wx.channel.admission.mean_turn = slow.delay
        wx.channel.inbox.max_rows = 2  # the inbound queue keeps two messages, no more
        answers = await asyncio.gather(*[wx.post(text_xml(f"o_full{n}", "帮助")) for n in range(6)])
        busy = [a for a in answers if a.content and "请过一分钟再发一次" in a.content]
        assert busy  # past the queue's bound: please resend
        await wx.channel.wait_idle()
        samples = await scrape(wx)
        assert samples[("volunteer_admission_refused_total", (("channel", "wechat"),))] == len(busy)
        assert samples[("volunteer_inbound_total", (("channel", "wechat"), ("outcome", "full")))] == len(busy)
        assert 1 <= samples[("volunteer_inbound_total", (("channel", "wechat"), ("outcome", "queued")))] <= 2
        async with sessions() as session:  # a refused message never reached the core
            assert len((await session.exec(select(InboundSeen))).all()) == 6 - len(busy)
        for n in range(6):  # every message not refused was answered: passively or through the outbox
            answer = answers[n]
            if answer.body == "success":
                assert len(api.sent_texts(f"o_full{n}")) == 1


async def test_metrics_after_a_few_turns(core, sessions, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        before = await scrape(wx)
        for n in range(3):
            assert "我是志愿助手" in await wx.say(f"o_metrics{n}", "帮助")
        after = await scrape(wx)
    label = (("channel", "wechat"),)
    assert before.get(("volunteer_turn_seconds_count", label), 0) == 0
    assert after[("volunteer_turn_seconds_count", label)] == 3
    assert after[("volunteer_turn_seconds_bucket", (("channel", "wechat"), ("le", "+Inf")))] == 3
    assert after.get(("volunteer_deadline_misses_total", label), 0) == 0


async def test_a_request_that_waited_in_a_lagging_loop_gets_success_and_its_reply_through_the_outbox(
        core, sessions, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        # the loop lags 1 s: the request is about 3 s old at the handler, 1 s more on the way out
        wx.channel.admission = Admission(channel="wechat", concurrency=8, max_wait=30.0, loop_lag=lagging(1.0),
                                         max_lag=2.0, metrics=wx.runtime.metrics)
        answer = await wx.post(text_xml("o_lagged", "帮助"))
        assert answer.status == 200 and answer.body == "success"
        assert wx.channel.inbox.holds_user("o_lagged")  # kept: the queue runs nothing while the loop lags
        wx.channel.admission.loop_lag.seconds = 0.0  # type: ignore[union-attr]  # the loop caught up
        await wx.channel.wait_idle()
        replies = api.sent_texts("o_lagged")
        assert len(replies) == 1 and "我是志愿助手" in replies[0]


async def test_overloaded_queues_without_a_turn_and_a_retry_joins_its_queued_message(
        sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    gated = GatedEngine(sessions, options, clock=clock)
    async with WeChatHarness(gated, sessions, api) as wx:
        admission = wx.channel.admission = Admission(channel="wechat", concurrency=1, max_wait=30.0,
                                                     metrics=wx.runtime.metrics)
        queued = text_xml("o_queued", "帮助", msg_id=990001)
        first = asyncio.create_task(wx.post(queued))
        await gated.entered.wait()  # the first delivery holds its turn
        assert admission.job("990001") is not None
        admission.max_queue = 0  # from now on admission refuses: overloaded
        retry = await wx.post(queued)  # WeChat's retry: same MsgId, another nonce
        assert retry.body == "success"  # joins the queued message, whose reply now follows through the outbox
        other = await wx.post(text_xml("o_other", "帮助"))
        assert other.body == "success"  # kept in the inbound queue, no turn now
        async with sessions() as session:
            assert len((await session.exec(select(InboundSeen))).all()) == 0  # neither turn has run
        gated.gate.set()
        assert (await first).body == "success"
        await wx.channel.wait_idle()  # the slot is free again: the queued message runs in the background
        for user in ("o_queued", "o_other"):
            replies = api.sent_texts(user)
            assert len(replies) == 1 and "我是志愿助手" in replies[0]  # exactly once each
        async with sessions() as session:
            assert len((await session.exec(select(InboundSeen))).all()) == 2
        samples = await scrape(wx)
        assert samples.get(("volunteer_admission_refused_total", (("channel", "wechat"),)), 0) == 0
        assert samples[("volunteer_inbound_total", (("channel", "wechat"), ("outcome", "queued")))] == 1
        assert samples[("volunteer_inbound_total", (("channel", "wechat"), ("outcome", "handled")))] == 1
        assert samples.get(("volunteer_inbound_queue_depth", (("channel", "wechat"),)), 0) == 0  # none left


async def test_the_channels_of_a_process_share_one_pool_of_turn_slots() -> None:
    slots = TurnSlots(2)
    wechat = Admission(channel="wechat", concurrency=8, max_wait=30.0, slots=slots)
    telegram = Admission(channel="telegram", concurrency=8, max_wait=30.0, slots=slots)
    assert wechat.concurrency == telegram.concurrency == 2  # the pool's, not each channel's own
    held = HeldWork()
    for n in range(3):  # Telegram's burst: two turns run, one waits
        telegram.submit(f"t{n}", held.work, late=False, finish_late=held.finish_late)
    await asyncio.sleep(0)
    assert (slots.running, slots.waiting) == (2, 1)
    wechat.mean_turn = 1.0
    assert wechat.expected_wait() == approx(2.0)  # behind Telegram's turns: a second round
    assert wechat.idle_slots(max_lag=1.0) == 0  # no background work while a turn waits
    wechat.submit("w0", held.work, late=False, finish_late=held.finish_late)
    await asyncio.sleep(0)
    assert slots.running == 2  # still two turns in the process, not 2 + 1
    held.release.set()
    await telegram.wait_idle()
    await wechat.wait_idle()
    assert (slots.running, slots.waiting) == (0, 0)
    assert wechat.idle_slots(max_lag=1.0) == 2
