"""A resident's request from message to rated hours through the real WeChat and Telegram endpoints."""

from __future__ import annotations

from sqlmodel import select

from models import Delivery, HourRecord, Identity
from models.requests import ServiceRequest
from tests.conversation import TelegramConversation, WeChatConversation
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers import make_coordinator, register, shown
from tests.telegram_harness import TelegramHarness, buttons, texts
from tests.wechat_harness import WeChatHarness

ADDRESS = "7号楼1单元302"
PHONE = "13912345678"


async def _pending_for(sessions, channel: str, user: str) -> list[Delivery]:  # noqa: ANN001
    async with sessions() as session:
        rows = await session.exec(
            select(Delivery).join(Identity, Identity.id == Delivery.identity_id)
            .where(Identity.channel == channel, Identity.external_id == user).order_by(Delivery.id))
        return list(rows)


async def _approve_on_console(console) -> None:  # noqa: ANN001
    coord = console("coord")
    await coord.send("待审核求助")
    await coord.send("1")
    assert "推送给 1 位" in await coord.send("通过")


async def test_lifecycle_through_the_telegram_webhook(core, sessions, db_url, console) -> None:  # noqa: ANN001
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区志愿服务站")
    async with FakeTelegramAPI() as api, TelegramHarness(api, core, sessions, db_url, webhook=True) as tg:
        volunteer, resident = 6001, 6002
        assert "注册成功" in await register(TelegramConversation(tg, volunteer), "王小丽", serial=21,
                                             phone="13700137000", skills="1", start="/register")

        sent = await tg.say(resident, "我家老人一个人住，想请志愿者每周来陪他聊天，在花家地社区")
        assert "助老服务" in texts(sent)
        sent = await tg.press(resident, buttons(sent)["对"])
        assert "详细地址" in texts(sent)
        await tg.say(resident, ADDRESS)
        await tg.say(resident, PHONE)
        await tg.say(resident, "李阿姨")
        sent = await tg.press(resident, "a:none")
        assert "139****5678" in texts(sent)
        assert "#1" in texts(await tg.press(resident, buttons(sent)["提交求助"]))

        await _approve_on_console(console)
        # the offer waits in the outbox for the Telegram sender: category, community, time, buttons
        offer = [d for d in await _pending_for(sessions, "telegram", str(volunteer)) if "take:1" in str(d.choices)]
        assert len(offer) == 1 and "花家地社区" in shown(offer[0])
        assert ADDRESS not in shown(offer[0]) and PHONE not in shown(offer[0]) and "李阿姨" not in shown(offer[0])
        sent = await tg.press(volunteer, "take:1")
        assert "接单成功" in texts(sent) and ADDRESS in texts(sent) and PHONE in texts(sent)
        assert "多少小时" in texts(await tg.press(volunteer, buttons(sent)["服务完成"]))
        await tg.say(volunteer, "1.5")

        rate = [d for d in await _pending_for(sessions, "telegram", str(resident)) if "rate:1" in str(d.choices)]
        assert len(rate) == 1 and "1.5 小时" in shown(rate[0])
        sent = await tg.press(resident, "rate:1")
        sent = await tg.press(resident, buttons(sent)["★★★★"])
        assert "已完成（★★★★）" in texts(await tg.press(resident, buttons(sent)["跳过"]))

    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
        record = (await session.exec(select(HourRecord))).one()
    assert request.status == "rated" and request.rating == 4
    assert (record.hours, record.source) == (1.5, "request")


async def test_lifecycle_through_the_wechat_endpoint(core, sessions, console) -> None:  # noqa: ANN001
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区志愿服务站")
    async with FakeWeChatAPI() as api, WeChatHarness(core, sessions, api) as wx:
        volunteer, resident = "o_volunteer_1", "o_resident_1"
        assert "注册成功" in await register(WeChatConversation(wx, volunteer), "王小丽", serial=31,
                                             phone="13700137000", skills="1")

        reply = await wx.say(resident, "我家電視壞了，想找人來修，我住花家地社區")
        assert "義務維修" in reply
        assert "詳細地址" in await wx.say(resident, "1")
        await wx.say(resident, ADDRESS)
        await wx.say(resident, "明天上午")
        await wx.say(resident, PHONE)
        await wx.say(resident, "李阿姨")
        await wx.say(resident, "没有")
        assert "#1" in await wx.say(resident, "1")
        async with sessions() as session:
            request = (await session.exec(select(ServiceRequest))).one()
            request.category = "elderly"  # the volunteer's skill (助老) fits this category
            session.add(request)
            await session.commit()

        await _approve_on_console(console)
        offer = [d for d in await _pending_for(sessions, "wechat", volunteer) if "take:1" in str(d.choices)]
        assert len(offer) == 1 and ADDRESS not in shown(offer[0]) and PHONE not in shown(offer[0])
        reply = await wx.say(volunteer, "接单")
        assert "接单成功" in reply and ADDRESS in reply and PHONE in reply
        await wx.say(volunteer, "服务完成")
        assert "2 小时" in await wx.say(volunteer, "2")

        assert "打分" in await wx.say(resident, "确认完成")
        await wx.say(resident, "3")
        assert "已完成" in await wx.say(resident, "跳過")

    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
        record = (await session.exec(select(HourRecord))).one()
    assert request.status == "rated" and request.rating == 3 and (record.hours, record.source) == (2.0, "request")
