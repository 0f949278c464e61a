"""Residents' service requests end to end through the console channel (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlmodel import select

from handlers.privacy import FieldCipher
from models import Delivery, HourRecord
from models.requests import Pairing, RequestOffer, ServiceRequest
from services.requests import escalate_unaccepted, remind_missed_visits
from tests.conftest import TEST_KEY
from tests.helpers import make_coordinator, person_of, register, shown

STATION = "花家地社区志愿服务站"
ADDRESS = "3号楼2单元401"
PHONE = "13912345678"
CONTACT = "李阿姨"
NEED = "我家老人一个人住，想请志愿者每周来陪他聊天"


async def _volunteer(console, user: str, name: str, serial: int, *, skills: str = "1", area: str = "花家地社区"):
    channel = console(user)
    assert "注册成功" in await register(channel, name, serial=serial, phone=f"1370013{serial:04d}", skills=skills,
                                         area=area)
    return channel


async def _ask(resident) -> str:
    """The resident's whole dialog; returns the submission reply."""
    reply = await resident.send(NEED)
    assert "助老服务" in reply and "对吗" in reply
    assert "哪个社区" in await resident.send("1")
    assert "详细地址" in await resident.send("花家地社区")
    phone_question = await resident.send(ADDRESS)
    # "每周" was in the sentence: the time is not asked again
    assert "联系电话" in phone_question and "什么时间" not in phone_question
    assert "11 位" in await resident.send("12345")
    assert "怎么称呼" in await resident.send("139 1234 5678")
    assert "需要志愿者提前知道" in await resident.send(CONTACT)
    summary = await resident.send("没有")
    assert "139****5678" in summary and "时间：每周" in summary and ADDRESS not in summary
    return await resident.send("提交求助")


async def _setup(console, sessions):
    await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    alice = await _volunteer(console, "alice", "王小丽", 11)
    bob = await _volunteer(console, "bob", "赵大刚", 12)
    grandma = console("grandma")
    submitted = await _ask(grandma)
    assert "#1" in submitted and "待审核" in submitted
    return alice, bob, grandma, console("coord")


async def _approve(coord) -> str:
    queue = await coord.send("待审核求助")
    assert "新的居民求助待审核" in queue and "#1" in queue
    detail = await coord.send("1")
    # the station's coordinator reviews the need; the address and full phone are for the assignee only
    assert CONTACT in detail and "139****5678" in detail and "仅接单志愿者可见" in detail
    assert ADDRESS not in detail and PHONE not in detail
    return await coord.send("通过")


async def test_whole_lifecycle_from_message_to_rated_hours(console, sessions) -> None:
    alice, bob, grandma, coord = await _setup(console, sessions)
    assert "推送给 2 位" in await _approve(coord)

    offer = await alice.send("我的接单")
    assert "居民求助需要志愿者" in offer and "助老服务" in offer and "花家地社区" in offer and "每周" in offer
    assert ADDRESS not in offer and PHONE not in offer and CONTACT not in offer
    taken = await alice.send("接单")
    assert "接单成功" in taken and ADDRESS in taken and PHONE in taken and CONTACT in taken

    bob_reply = await bob.send("接单 1")
    assert "其他志愿者接单" in bob_reply
    assert ADDRESS not in bob_reply and PHONE not in bob_reply and CONTACT not in bob_reply
    assert "找不到这条求助" in await bob.send("/reqv 1")

    status = await grandma.send("我的求助怎么样了")
    assert "已通过审核" in status and "已派单" in status and "王小丽" in status
    assert "服务中" not in status

    assert "已开始服务" in await alice.send("开始服务")
    assert "多少小时" in await alice.send("服务完成")
    assert "0–24" in await alice.send("30")
    assert "2 小时" in await alice.send("2")

    note = await grandma.send("确认完成")
    assert "已完成" in note and "打分" in note
    assert "想对志愿者说" in await grandma.send("5")
    closed = await grandma.send("谢谢小王，很耐心")
    assert "已完成（★★★★★）" in closed

    # the resident's confirmation is not a coordinator's: the hours wait for the station's review
    hours = await alice.send("我的时长")
    assert "已确认完成" in hours and "谢谢小王" in hours and "累计志愿服务时长：0 小时" in hours
    assert "待审核：2 小时" in hours
    assert "王小丽" in await coord.send("待审核时长")
    assert "通过" in await coord.send("1")
    assert "已通过" in await coord.send("通过")
    hours = await alice.send("我的时长")
    assert "已通过审核" in hours and "累计志愿服务时长：2 小时" in hours and "待审核" not in hours

    resident = await person_of(sessions, "console", "grandma")
    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
        assert request.status == "rated" and request.rating == 5 and request.hours == 2
        record = (await session.exec(select(HourRecord))).one()
        assert record.source == "request" and record.recorded_by == resident.id and "#1" in record.note
        assert record.person_id == (await person_of(sessions, "console", "alice")).id
        # address and phone are stored encrypted; the plain values are in no table row
        assert FieldCipher(TEST_KEY).decrypt(request.address_enc) == ADDRESS
        for table in ("service_request", "dialog_state", "delivery", "request_offer"):
            dump = str((await session.exec(text(f"SELECT * FROM {table}"))).all())
            assert ADDRESS not in dump and PHONE not in dump, table


async def test_other_stations_coordinators_never_see_details(console, sessions) -> None:
    alice, bob, grandma, coord = await _setup(console, sessions)
    await make_coordinator(sessions, channel="console", user="other", org="望京社区志愿服务站")
    other = console("other")
    reply = await other.send("/reqv 1")
    assert "找不到" in reply and ADDRESS not in reply
    assert "没有待处理的求助" in await other.send("待审核求助")
    assert "不是该社区的协调员" in await other.send("/approve 1")
    # and a volunteer who was never offered it sees nothing either
    carol = await _volunteer(console, "carol", "孙小美", 13, area="望京社区")
    await _approve(coord)
    reply = await carol.send("/reqv 1")
    assert "找不到" in reply and ADDRESS not in reply
    async with sessions() as session:
        offered = set((await session.exec(select(RequestOffer.volunteer_id))).all())
    assert (await person_of(sessions, "console", "carol")).id not in offered  # wrong area: not offered


async def test_rejection_with_reason(console, sessions) -> None:
    alice, bob, grandma, coord = await _setup(console, sessions)
    await coord.send("待审核求助")
    await coord.send("1")
    assert "原因" in await coord.send("驳回")
    assert "已驳回" in await coord.send("本站暂不提供此项服务，请联系街道")
    status = await grandma.send("我的求助")
    assert "未通过审核" in status and "本站暂不提供此项服务" in status and "已驳回" in status
    assert "目前没有推送给你的求助" in await alice.send("接单")


async def test_cancellation_tells_the_volunteers(console, sessions) -> None:
    alice, bob, grandma, coord = await _setup(console, sessions)
    await _approve(coord)
    await grandma.send("我的求助")
    detail = await grandma.send("1")
    assert ADDRESS in detail and "取消求助" in detail
    assert "原因" in await grandma.send("取消求助")
    assert "已取消" in await grandma.send("已经不需要了")
    assert "已被居民取消" in await alice.send("帮助")
    assert "已被居民取消" in await bob.send("接单")
    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
        assert request.status == "cancelled" and request.reason == "不需要了"


async def test_nobody_accepts_then_coordinator_assigns_by_hand(console, sessions, clock) -> None:
    alice, bob, grandma, coord = await _setup(console, sessions)
    await _approve(coord)
    assert "婉拒" in await bob.send("不接")
    clock.advance(hours=3)
    async with sessions() as session:
        assert await escalate_unaccepted(session, now=clock()) == []
    clock.advance(hours=2)
    async with sessions() as session:
        assert await escalate_unaccepted(session, now=clock()) == [1]
        await session.commit()
    async with sessions() as session:  # told once, not at every scheduler run
        assert await escalate_unaccepted(session, now=clock()) == []
    notice = await coord.send("帮助")
    assert "无人接单" in notice and "手动派单" in notice
    pick = await coord.send("/assign 1")
    assert "王小丽" in pick and "赵大刚" in pick
    assert "已将求助 #1 派给" in await coord.send("赵大刚")
    told = await bob.send("我的接单")
    assert "协调员为你派了一单" in told and "已派单" in told
    assert ADDRESS in await bob.send("1")
    # the volunteer who did not answer is told it is taken
    assert "其他志愿者接单" in await alice.send("帮助")


async def test_two_volunteers_accept_at_the_same_moment(console, sessions) -> None:
    alice, bob, grandma, coord = await _setup(console, sessions)
    await _approve(coord)
    replies = await asyncio.gather(alice.send("接单"), bob.send("接单"))
    winners = [r for r in replies if "接单成功" in r]
    assert len(winners) == 1, replies
    loser = replies[1] if winners[0] is replies[0] else replies[0]
    assert "其他志愿者接单" in loser and ADDRESS not in loser and PHONE not in loser
    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
        statuses = sorted((await session.exec(select(RequestOffer.status))).all())
    assert request.status == "assigned" and statuses == ["accepted", "taken"]


async def test_category_can_be_corrected_and_missing_items_only_are_asked(console, sessions) -> None:
    await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    resident = console("zhang")
    reply = await resident.send("明天下午能不能找人帮我修一下电视？我住花家地社区，电话13800001111")
    assert "义务维修" in reply
    await resident.send("换一个类别")
    # community, time and phone came with the sentence: only the address and a name are asked
    assert "详细地址" in await resident.send("代办代购")
    assert "怎么称呼" in await resident.send("5号楼101")
    await resident.send("张先生")
    summary = await resident.send("没有")
    assert "代办代购" in summary and "138****1111" in summary and "明天下午" in summary
    assert "13800001111" not in summary
    await resident.send("1")
    # the station's coordinator can change the category too
    coord = console("coord")
    await coord.send("/recat 1")
    assert "义务维修" in await coord.send("义务维修")


async def test_volunteer_wanting_to_help_goes_to_activities_not_requests(console) -> None:
    reply = await console("keen").send("我想去敬老院帮忙")
    assert "对吗" not in reply and "活动" in reply


async def test_traditional_and_english_requests(console, sessions) -> None:
    tw = console("tw")
    reply = await tw.send("我家電視壞了，想找人來修")
    assert "義務維修" in reply and "對嗎" in reply
    en = console("en")
    reply = await en.send("My grandmother needs someone to buy groceries for her")
    assert "Errands" in reply and "is that right" in reply
    assert "Which community" in await en.send("yes")


async def test_money_reminders(console, sessions) -> None:
    alice = await _volunteer(console, "alice", "王小丽", 11)
    reply = await alice.send("居民要给我红包怎么办")
    assert "第二十一条" in reply and "不得向服务对象收取" in reply
    assert "第二十一条" in await alice.send("收费")
    reply = await console("someone").send("可以收费吗")
    assert "无偿" in reply


async def test_pairing_visit_logs_and_missed_visit_reminders(console, sessions, clock) -> None:
    await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    alice = await _volunteer(console, "alice", "王小丽", 11)
    coord = console("coord")
    assert "志愿者的姓名" in await coord.send("结对帮扶")
    assert "居民怎么称呼" in await coord.send("王小丽")
    assert "多少天" in await coord.send("王奶奶")
    assert "已安排结对" in await coord.send("7")
    assert "结对帮扶" in await alice.send("帮助")

    logged = await alice.send("看望王奶奶 1 小时，血压正常")
    assert "已记录看望 王奶奶 1 小时" in logged and "血压正常" in logged and "审核" in logged
    mine = await alice.send("我的时长")
    assert "累计志愿服务时长：0 小时" in mine and "待审核：1 小时" in mine

    clock.advance(days=8)
    async with sessions() as session:
        told = await remind_missed_visits(session, now=clock())
        await session.commit()
    assert told["volunteer"] == [1] and told["coordinator"] == []
    assert "没有看望结对的 王奶奶" in await alice.send("帮助")
    clock.advance(days=3)
    async with sessions() as session:
        told = await remind_missed_visits(session, now=clock())
        await session.commit()
    assert told == {"volunteer": [], "coordinator": [1]}
    assert "王小丽 已 11 天没有看望 王奶奶" in await coord.send("帮助")
    # a visit resets the reminders
    await alice.send("探望王奶奶两个小时，陪她去了医院")
    async with sessions() as session:
        pairing = (await session.exec(select(Pairing))).one()
        assert pairing.volunteer_reminded_at is None and pairing.coordinator_reminded_at is None
        records = (await session.exec(select(HourRecord).where(HourRecord.source == "pairing"))).all()
        assert sorted(r.hours for r in records) == [1.0, 2.0]
        # notices to the volunteer never carried anything but what they need
        texts = [shown(d) for d in (await session.exec(select(Delivery))).all()]
    assert any("看望" in t for t in texts)


async def test_accept_race_on_the_database_itself(console, sessions, clock) -> None:
    """The second accept waits for the first transaction and then matches no row (both backends)."""
    import pytest

    from services.requests import RequestError, accept_offer

    alice, bob, grandma, coord = await _setup(console, sessions)
    await _approve(coord)
    alice_id = (await person_of(sessions, "console", "alice")).id
    bob_id = (await person_of(sessions, "console", "bob")).id
    async with sessions() as first, sessions() as second:
        await accept_offer(first, request_id=1, volunteer_id=alice_id, now=clock())  # not committed yet
        late = asyncio.create_task(accept_offer(second, request_id=1, volunteer_id=bob_id, now=clock()))
        await asyncio.sleep(0.3)
        assert not late.done()  # blocked behind the first transaction's row (PostgreSQL) / write lock (SQLite)
        await first.commit()
        with pytest.raises(RequestError) as lost:
            await late
        assert lost.value.reason == "taken"
        await second.commit()
    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
    assert request.assignee_id == alice_id


async def test_pairing_dialog_asks_again_for_unknown_or_shared_names(console, sessions, clock) -> None:
    await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    await _volunteer(console, "alice", "王小丽", 11)
    await _volunteer(console, "alice2", "王小丽", 12)
    coord = console("coord")
    assert "志愿者的姓名" in await coord.send("结对帮扶")
    assert "没有找到名叫「李四」" in await coord.send("李四")
    assert "有同名的志愿者" in await coord.send("王小丽")
    assert "居民怎么称呼" in await coord.send("2")  # the second of the two buttons
    assert "30 字以内" in await coord.send("王" * 31)
    assert "多少天" in await coord.send("王奶奶")
    assert "1–90" in await coord.send("120")
    assert "已安排结对" in await coord.send("14天")
    async with sessions() as session:
        pairing = (await session.exec(select(Pairing))).one()
        assert pairing.interval_days == 14 and pairing.resident_name == "王奶奶"
        assert pairing.volunteer_id == (await person_of(sessions, "console", "alice2")).id
    assert "只有协调员或管理员可以这样做" in await console("alice").send("结对帮扶")


async def test_request_buttons_with_bad_ids_are_refused(console, sessions, clock) -> None:
    await _volunteer(console, "alice", "王小丽", 11)
    alice = console("alice")
    assert "过期" in await alice.send("/reqv 99999999999")
    assert "过期" in await alice.send("接单 abc")
    assert "没有推送给你的求助" in await alice.send("接单")


async def test_request_form_edits_one_slot_and_offers_buttons_for_time_and_own_phone(console, sessions, clock) -> None:
    grandma = console("grandma2")
    assert "注册成功" in await register(grandma, "张桂芳", serial=21, phone="13700130021", skills="1",
                                         area="花家地社区")
    reply = await grandma.send("想请人帮忙买菜")
    assert "对吗" in reply
    assert "花家地社区" in await grandma.send("对")  # the registered area is offered as a button
    assert "详细地址" in await grandma.send("1")
    assert "什么时间" in await grandma.send(ADDRESS)
    assert "联系电话" in await grandma.send("时间都可以")
    assert "怎么称呼" in await grandma.send("用 137****0021")
    assert "需要志愿者提前知道" in await grandma.send(CONTACT)
    summary = await grandma.send("没有")
    assert "时间：时间都可以" in summary and "137****0021" in summary and ADDRESS not in summary
    assert "要修改哪一项" in await grandma.send("修改")
    assert "联系电话" in await grandma.send("电话")
    assert "11 位" in await grandma.send("12345")
    summary = await grandma.send(PHONE)
    assert "请确认你的求助" in summary and "139****5678" in summary and "时间：时间都可以" in summary
    assert "#1" in await grandma.send("提交求助")
    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
        assert request.phone_masked == "139****5678" and PHONE not in (request.phone_enc or "")
        assert FieldCipher(TEST_KEY).decrypt(request.address_enc) == ADDRESS
