"""Follow-ups of the durable inbound queue (bot/inbox.py): a queued row whose worker died between its turn's
commit and its outbox row still gets its reply; a user's queued messages run ahead of their next one and
are answered passively with it; start-up objects are frozen out of the collector. No timing: overload is
made by admission's settings, the background drain is stopped and started by hand."""

from __future__ import annotations

import gc
from typing import Any

from sqlmodel import select

from bot.admission import Admission
from bot.inbox import inbound_from_json
from bot.serve import freeze_start_up_objects
from handlers.messages import Inbound
from handlers.privacy import open_json
from models import Delivery, InboundSeen
from services.inbound_queue import claim
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.wechat_harness import SlowEngine, WeChatHarness, overloaded, queued_rows, text_xml


async def drain(wx: WeChatHarness, sessions) -> None:  # noqa: ANN001
    wx.channel.admission.max_queue = 5000
    wx.channel.inbox.start()
    while await queued_rows(sessions):
        await wx.channel.admission.wait_idle()
        await wx.channel.inbox.wait_idle()
    await wx.channel.wait_idle()


async def queued_and_taken(wx: WeChatHarness, clock, user: str, *, msg_id: int) -> tuple[Any, Inbound]:  # noqa: ANN001
    """帮助 from ``user`` while the channel is overloaded (kept in the inbound queue, answered "success"),
    then its row taken by a worker as the drain would: the row and the message it holds."""
    await overloaded(wx)
    assert (await wx.post(text_xml(user, "帮助", msg_id=msg_id))).body == "success"
    async with wx.runtime.db.connect() as connection:
        [item] = await claim(connection, channel="wechat", now=clock(), lease=wx.channel.inbox.lease, limit=1)
    return item, inbound_from_json(open_json(wx.runtime.core.cipher, item.payload))


async def test_a_queued_turn_committed_by_a_worker_that_died_still_gets_its_reply(
        core, sessions, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        # a worker takes the row and commits its turn, then dies before the outbox row: the lease runs out
        item, inbound = await queued_and_taken(wx, clock, "o_died", msg_id=880001)
        handled = await core.handle_delivery(inbound)
        assert not handled.repeat and handled.replies
        assert api.sent_texts("o_died") == []
        clock.advance(seconds=wx.channel.inbox.lease.total_seconds() + 1)
        await drain(wx, sessions)  # the row again: a repeat of the committed turn
    replies = api.sent_texts("o_died")
    assert len(replies) == 1 and "我是志愿助手" in replies[0]  # the stored replies, once
    async with sessions() as session:
        assert len((await session.exec(select(InboundSeen))).all()) == 1  # the turn's effect once


async def test_a_queued_row_whose_reply_was_sent_is_not_sent_again(
        core, sessions, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        item, inbound = await queued_and_taken(wx, clock, "o_sent", msg_id=880002)
        answer = await wx.channel._turn(inbound)
        # the reply is written and sent, but the row survives (as if its delete had been lost)
        await wx.channel._deliver_late(item.message_key, inbound.user_id, answer)
        assert len(api.sent_texts("o_sent")) == 1
        clock.advance(seconds=wx.channel.inbox.lease.total_seconds() + 1)
        await drain(wx, sessions)
    assert len(api.sent_texts("o_sent")) == 1
    async with sessions() as session:
        assert len((await session.exec(select(Delivery))).all()) == 1


def test_start_up_objects_are_frozen_out_of_the_collector() -> None:
    try:
        assert freeze_start_up_objects() > 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the other tests' objects stay collectable


async def test_queued_messages_run_ahead_that_miss_the_deadline_follow_in_one_message(
        sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    # each turn takes 0.3 s (admission expects 0.05 s): two turns run past the 0.4 s deadline
    slow = SlowEngine(sessions, options, clock=clock, delay=0.3)
    async with WeChatHarness(slow, sessions, api, reply_deadline=0.4) as wx:
        admission = await overloaded(wx)
        assert (await wx.post(text_xml("o_late", "帮助"))).body == "success"
        admission.max_queue = 5000
        assert (await wx.post(text_xml("o_late", "我的时长"))).body == "success"  # late: no passive reply
        await wx.channel.wait_idle()
        assert await queued_rows(sessions) == []  # deleted with the reply's outbox row
    [reply] = api.sent_texts("o_late")  # one customer-service message for both
    assert reply.startswith("我是志愿助手") and "累计志愿服务时长" in reply


async def test_a_queued_request_waits_once_for_the_writer_and_a_replay_is_still_refused(
        core, sessions, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        await overloaded(wx)
        channel = wx.channel
        taken: list[str] = []

        def counted(name: str, slot):  # noqa: ANN001, ANN202
            def acquire():  # noqa: ANN202
                taken.append(name)
                return slot()
            return acquire

        channel.inbox.write_slot = counted("inbox", channel.inbox.write_slot)
        channel.replay.write_slot = counted("replay", channel.replay.write_slot)
        message = text_xml("o_once", "帮助", msg_id=880101)
        query = wx.query(message)
        assert (await wx.post(message, query=query)).body == "success"
        assert taken == ["inbox"]  # the signed pair went with the row: one wait for SQLite's writer
        # the same signature with another body: a replay, refused and not kept
        forged = await wx.post(text_xml("o_evil", "我的时长", msg_id=880102), query=query)
        assert forged.status == 403
        assert [row.message_key for row in await queued_rows(sessions)] == ["880101"]
        channel.admission = Admission(channel="wechat", concurrency=2, max_wait=30.0, metrics=wx.runtime.metrics)
        # not overloaded any more: the guard itself knows the pair too
        again = await wx.post(text_xml("o_evil", "我的时长", msg_id=880103), query=query)
        assert again.status == 403
        await drain(wx, sessions)
    assert len(api.sent_texts("o_once")) == 1 and api.sent_texts("o_evil") == []
