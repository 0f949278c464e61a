"""An activity change through WeChat and Telegram: the coordinator edits or cancels on one channel, the
volunteer signed up on the other gets the notice, sent by the outbox drainer through that channel's real
sender against the fake platform API."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.telegram.sender import TelegramSender, make_bot
from bot.channels.wechat.api import DatabaseTokenStore, WeChatApiClient
from bot.channels.wechat.sender import WeChatSender
from bot.outbox import OutboxDrainer
from tests.conversation import TelegramConversation, WeChatConversation, joined
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramAPI
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers import add_activity, make_coordinator, register
from tests.telegram_harness import TelegramHarness
from tests.wechat_harness import WeChatHarness


async def test_coordinator_on_wechat_cancels_and_the_telegram_volunteer_is_told(core, sessions, db_url,
                                                                                clock) -> None:
    org = await make_coordinator(sessions, channel="wechat", user="o_coord", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2))
    async with FakeWeChatAPI() as wx_api, WeChatHarness(core, sessions, wx_api) as wx, \
            FakeTelegramAPI() as tg_api, TelegramHarness(tg_api, core, sessions, db_url) as tg:
        volunteer = TelegramConversation(tg, 7101)
        assert "注册成功" in await register(volunteer, "电报志愿者", serial=91)
        assert "报名成功" in joined(await volunteer.send(f"/join {activity.id}"))

        coord = WeChatConversation(wx, "o_coord")
        assert "原因" in joined(await coord.send(f"取消活动 {activity.id}"))
        summary = joined(await coord.send("敬老院临时封闭消毒"))
        assert "已报名 1 人" in summary and "确认取消活动" in coord.buttons
        assert "已通知报名和候补的 1 个账号" in joined(await coord.press("确认取消活动"))

        sender = TelegramSender(make_bot(DEFAULT_TOKEN, tg_api.base_url), global_rate=1000, per_chat_interval=0,
                                owns_bot=True)
        stats = await OutboxDrainer(sessions, sender).drain_until_idle()
        await sender.close()
    assert stats.sent == 1
    notice = tg_api.sent_texts(chat_id=7101)[-1]
    assert "「社区敬老院探访」" in notice and "已取消" in notice and "原因：敬老院临时封闭消毒" in notice


async def test_coordinator_on_telegram_edits_the_time_and_the_wechat_volunteer_is_told(core, sessions, db_url,
                                                                                      clock) -> None:
    org = await make_coordinator(sessions, channel="telegram", user="7201", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2))
    async with FakeWeChatAPI() as wx_api, WeChatHarness(core, sessions, wx_api) as wx, \
            FakeTelegramAPI() as tg_api, TelegramHarness(tg_api, core, sessions, db_url) as tg:
        volunteer = WeChatConversation(wx, "o_volunteer")
        assert "注册成功" in await register(volunteer, "微信志愿者", serial=92)
        assert "报名成功" in joined(await volunteer.send(f"/join {activity.id}"))

        coord = TelegramConversation(tg, 7201)
        await coord.send("活动")
        await coord.press("社区敬老院探访")
        assert "修改活动" in coord.buttons
        assert "要改哪一项" in joined(await coord.press("修改活动"))
        assert "开始时间" in joined(await coord.press("时间"))
        assert "对吗" in joined(await coord.send("3月5日 14:00"))
        assert "结束时间" in joined(await coord.press("对"))
        summary = joined(await coord.send("16:00"))
        assert "→" in summary and "14:00–16:00" in summary
        assert "已通知报名和候补的 1 个账号" in joined(await coord.press("确认修改"))

        client = WeChatApiClient(app_id=wx_api.app_id, app_secret=wx_api.secret,
                                 tokens=DatabaseTokenStore(sessions, wx_api.app_id), api_base=wx_api.base_url)
        # inside the 48-hour window of the volunteer's last message (the test clock, not the wall clock)
        sender = WeChatSender(client, clock=lambda: clock.now.timestamp())
        stats = await OutboxDrainer(sessions, sender).drain_until_idle()
        await sender.close()
    assert stats.sent == 1
    notice = wx_api.sent_texts("o_volunteer")[-1]
    assert "「社区敬老院探访」时间改为 3月5日 14:00–16:00" in notice and "查看活动" in notice
