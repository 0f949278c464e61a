"""Admission control in front of the core (bot/admission.py) and GET /metrics: the real /wechat endpoint
on loopback with a slowed core, a fake WeChat API for the replies that follow through the outbox."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from bot.admission import Admission, Decision
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
async def test_decisions_follow_the_queue_and_drain_cancels_cleanly() -> None:
    errors: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    admission = Admission(channel="test", concurrency=2, max_wait=3.0)
    admission.mean_turn = 1.0
    release = asyncio.Event()
    results: list[str] = []

    async def work() -> str:
        await release.wait()
        return "done"

    async def finish_late(result: str) -> None:
        results.append(result)

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


async def test_a_full_queue_asks_the_user_to_send_again(sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    slow = SlowEngine(sessions, options, clock=clock, delay=0.3)
    async with WeChatHarness(slow, sessions, api, reply_deadline=1.0) as wx:
        wx.channel.admission = Admission(channel="wechat", concurrency=1, max_wait=0.7,
                                         metrics=wx.runtime.metrics)
        wx.channel.admission.mean_turn = slow.delay
        answers = await asyncio.gather(*[wx.post(text_xml(f"o_full{n}", "帮助")) for n in range(6)])
        busy = [a for a in answers if a.content and "请过一分钟再发一次" in a.content]
        assert busy  # beyond two queued turns the expected wait passes 0.7 s
        await wx.channel.wait_idle()
        samples = await scrape(wx)
        assert samples[("volunteer_admission_refused_total", (("channel", "wechat"),))] == len(busy)
        async with sessions() as session:  # a refused message never reached the core
            assert len((await session.exec(select(InboundSeen))).all()) == 6 - len(busy)


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
