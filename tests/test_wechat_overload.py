"""The WeChat endpoint's durable inbound queue (bot/inbox.py, services/inbound_queue.py): a message the
process cannot run in time is answered `success` once it is kept, survives a restart, is joined by its
retry, runs in its user's order, and is refused honestly past the queue's bound. No timing: overload is
made by admission's settings, the background drain is stopped and started by hand."""

from __future__ import annotations

from sqlmodel import select

from models import InboundSeen
from services.inbound_queue import claim
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.wechat_harness import WeChatHarness, overloaded, queued_rows, text_xml

BUSY = "请过一分钟再发一次"


async def test_a_queued_message_survives_a_restart_and_its_retries_join_it(
        core, sessions, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    message = text_xml("o_restart", "帮助", msg_id=770001)
    async with WeChatHarness(core, sessions, api) as wx:
        await overloaded(wx)
        assert (await wx.post(message)).body == "success"
        assert (await wx.post(message)).body == "success"  # WeChat's retry (another nonce) joins it
        rows = await queued_rows(sessions)
        assert [row.message_key for row in rows] == ["770001"]
        # sealed: neither the text nor the sender is readable in the table
        assert "帮助" not in rows[0].payload and "o_restart" not in rows[0].payload + rows[0].user_key
        async with sessions() as session:
            assert (await session.exec(select(InboundSeen))).all() == []  # no turn ran
    assert api.sent_texts("o_restart") == []

    async with WeChatHarness(core, sessions, api) as wx:  # the next process
        await overloaded(wx)
        assert (await wx.post(message)).body == "success"  # a retry reaching it joins the stored row
        assert len(await queued_rows(sessions)) == 1
        wx.channel.admission.max_queue = 5000
        wx.channel.inbox.start()  # takes the rows left by the previous process
        while await queued_rows(sessions):
            await wx.channel.admission.wait_idle()
            await wx.channel.inbox.wait_idle()
        await wx.channel.wait_idle()
    replies = api.sent_texts("o_restart")
    assert len(replies) == 1 and "我是志愿助手" in replies[0]  # exactly once, through the outbox
    async with sessions() as session:
        assert len((await session.exec(select(InboundSeen))).all()) == 1


async def test_a_users_next_message_runs_their_queued_one_first_and_answers_both(
        core, sessions, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        admission = await overloaded(wx)
        assert (await wx.post(text_xml("o_order", "帮助"))).body == "success"
        admission.max_queue = 5000  # room again: another user is answered passively at once …
        assert "我是志愿助手" in await wx.say("o_someone", "帮助")
        # … and this user's next message runs after their queued one, both replies in its passive reply
        # (customer-service messages are rationed: none is used)
        both = await wx.say("o_order", "我的时长", msg_id=770101)
        assert both.startswith("我是志愿助手") and "累计志愿服务时长" in both  # in the order they were sent
        # WeChat's retry (that reply did not arrive) gets the same page, not only its own message's reply
        assert await wx.say("o_order", "我的时长", msg_id=770101) == both
        await wx.channel.wait_idle()
        assert await queued_rows(sessions) == []
        async with sessions() as session:
            assert len((await session.exec(select(InboundSeen))).all()) == 3
        assert wx.runtime.metrics.inbound.labels("wechat", "handled")._value.get() == 1
        assert wx.runtime.metrics.inbound.labels("wechat", "ahead")._value.get() == 1
    assert api.sent_texts("o_order") == []


async def test_a_users_next_message_waits_behind_the_queued_one_being_handled(
        core, sessions, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        admission = await overloaded(wx)
        assert (await wx.post(text_xml("o_order", "帮助"))).body == "success"
        admission.max_queue = 5000
        async with wx.runtime.db.connect() as connection:  # another worker is handling the queued message
            assert len(await claim(connection, channel="wechat", now=clock(), lease=wx.channel.inbox.lease,
                                   limit=1)) == 1
        # this user's next message queues behind it: a dialog keeps its order
        assert (await wx.post(text_xml("o_order", "我的时长"))).body == "success"
        assert len(await queued_rows(sessions)) == 2
        clock.advance(seconds=wx.channel.inbox.lease.total_seconds() + 1)  # that worker died
        wx.channel.inbox.start()
        while await queued_rows(sessions):
            await wx.channel.admission.wait_idle()
            await wx.channel.inbox.wait_idle()
        await wx.channel.wait_idle()
    replies = api.sent_texts("o_order")
    assert len(replies) == 2 and replies[0].startswith("我是志愿助手") and not replies[1].startswith("我是志愿助手")


async def test_past_the_queue_s_age_or_rows_the_user_is_asked_to_resend(
        core, sessions, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api) as wx:
        await overloaded(wx)
        inbox = wx.channel.inbox
        assert (await wx.post(text_xml("o_old", "帮助"))).body == "success"
        clock.advance(seconds=inbox.max_age.total_seconds() + 1)  # the oldest row waits too long: not draining
        late = await wx.post(text_xml("o_new", "帮助"))
        assert late.content is not None and BUSY in late.content
        clock.advance(seconds=-inbox.max_age.total_seconds())
        inbox.max_rows = 1  # young again, but full
        full = await wx.post(text_xml("o_new", "帮助"))
        assert full.content is not None and BUSY in full.content
        inbox.max_rows = 2
        assert (await wx.post(text_xml("o_new", "帮助"))).body == "success"
        wx.channel.admission.max_queue = 5000
        inbox.start()
        await wx.channel.wait_idle()
        metrics = wx.runtime.metrics
        assert metrics.inbound.labels("wechat", "full")._value.get() == 2
        assert metrics.refused.labels("wechat")._value.get() == 2
    assert len(api.sent_texts("o_old")) == 1 and len(api.sent_texts("o_new")) == 1
