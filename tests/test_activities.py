"""Activities through the console: create by dialog, list, join, waitlist, cancel, roster, nearby."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from models import Activity, Delivery, Signup
from tests.helpers import add_activity, make_coordinator, register, shown


async def test_coordinator_creates_an_activity_by_dialog(console, sessions, clock) -> None:
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    coord = console("coord")
    assert "活动名称" in await coord.send("发布活动")
    assert "介绍" in await coord.send("植树节义务植树")
    category = await coord.send("在公园种树，请穿运动鞋")
    assert "环境" in category
    assert "地点" in await coord.send("环境保护")  # a label typed instead of its number
    assert "坐标" in await coord.send("望京公园南门")
    assert "开始时间" in await coord.send("39.99,116.47")
    assert "没看懂" in await coord.send("明天上午")
    assert "2026-03-12（周四）09:00，对吗？" in await coord.send("3月12日 9:00")
    assert "结束时间" in await coord.send("对")
    assert "晚于开始" in await coord.send("8:00")
    assert "多少名" in await coord.send("11:30")
    assert "1–1000" in await coord.send("很多")
    summary = await coord.send("20")
    assert "植树节义务植树" in summary and "2026-03-12" in summary and "09:00–11:30" in summary
    assert "活动已发布" in await coord.send("1")
    async with sessions() as session:
        activity = (await session.exec(select(Activity))).one()
    assert activity.capacity == 20 and activity.category == "environment" and activity.latitude == 39.99
    # 09:00 in Beijing is 01:00 UTC
    assert activity.start_at.hour == 1 and activity.end_at - activity.start_at == timedelta(hours=2, minutes=30)


async def test_list_is_paginated_and_details_offer_join(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="c", org="望京街道")
    for day in range(1, 6):
        await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=day), title=f"活动{day}")
    await add_activity(sessions, org_id=org, start=clock.now - timedelta(days=2), title="已结束的活动")
    alice = console("alice")
    page1 = await alice.send("最近有什么志愿活动?")
    assert "第 1/2 页" in page1 and "活动1" in page1 and "活动4" not in page1 and "下一页" in page1
    page2 = await alice.send("下一页")
    assert "第 2/2 页" in page2 and "活动4" in page2 and "活动5" in page2 and "已结束" not in page2
    details = await alice.send("1")
    assert "活动4" in details and "名额：0/10" in details and "报名参加" in details
    assert "先完成志愿者实名注册" in await alice.send("报名参加")
    # a page past the end (an old 下一页 button after activities ended): the last page
    stale = await alice.send("/acts 9")
    assert "第 2/2 页" in stale and "活动5" in stale and "活动1" not in stale and "下一页" not in stale
    clock.advance(days=10)
    assert "近期还没有志愿活动" in await alice.send("/acts 2")


async def test_join_full_waitlist_and_cancel_promotes_first_in_line(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="c", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=3), capacity=1)
    people = {name: console(name) for name in ("amy", "ben", "cat")}
    for serial, (channel, name) in enumerate(zip(people.values(), ("艾米", "本杰", "凯特"), strict=True), start=20):
        assert "注册成功" in await register(channel, name, serial=serial)
    assert "报名成功" in await people["amy"].send(f"/join {activity.id}")
    await people["amy"].send("活动")
    details = await people["amy"].send("1")
    assert "你已报名" in details and "取消报名" in details
    assert "已经报名" in await people["amy"].send(f"/join {activity.id}")
    await people["ben"].send("活动")
    await people["ben"].send("1")
    assert "候补名单（第 1 位）" in await people["ben"].send("加入候补")
    await people["ben"].send("活动")
    details = await people["ben"].send("1")
    assert "名额：1/1（已满，可候补）" in details and "你在候补名单上" in details and "取消报名" in details
    await people["cat"].send("活动")
    await people["cat"].send("1")
    assert "第 2 位" in await people["cat"].send("加入候补")

    await people["amy"].send("我的报名")
    await people["amy"].send("1")
    assert "已取消" in await people["amy"].send("取消报名")
    async with sessions() as session:
        statuses = {s.person_id: s.status for s in await session.exec(select(Signup))}
        notices = list(await session.exec(select(Delivery).where(Delivery.source == "waitlist")))
    assert sorted(statuses.values()) == ["cancelled", "confirmed", "waitlist"]
    assert len(notices) == 1 and "转为正式参加" in shown(notices[0])
    # ben is told on his next message (console has no push), exactly once
    reply = await people["ben"].send("你好")
    assert reply.startswith("你有 1 条新通知") and "转为正式参加" in reply
    assert "新通知" not in await people["ben"].send("你好")


async def test_cancel_after_start_is_refused(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="c", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(hours=1))
    dan = console("dan")
    await register(dan, "丁一", serial=30)
    await dan.send("活动")
    await dan.send("1")
    assert "报名成功" in await dan.send("报名参加")
    clock.advance(hours=2)
    await dan.send("我想取消明天的活动报名")  # shows my sign-ups
    async with sessions() as session:
        signup = (await session.exec(select(Signup).where(Signup.activity_id == activity.id))).one()
    assert signup.status == "confirmed"
    assert "已经开始" in await dan.send(f"/leave {activity.id}")


async def test_roster_shows_names_with_masked_phones(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1))
    eve = console("eve")
    await register(eve, "伊娃", serial=40, phone="13512345678")
    await eve.send("活动")
    await eve.send("1")
    await eve.send("报名参加")
    coord = console("coord")
    await coord.send("活动")
    details = await coord.send("1")
    assert "查看名单" in details
    roster = await coord.send("查看名单")
    assert "伊娃 135****5678" in roster and "13512345678" not in roster


async def test_shared_location_lists_nearby_activities_by_distance(core, sessions, clock) -> None:
    from handlers.messages import Inbound, Location

    org = await make_coordinator(sessions, channel="console", user="c", org="望京街道")
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), title="远处", lat=40.5, lon=116.9)
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2), title="近处", lat=39.99, lon=116.48)
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=3), title="无坐标")
    replies = await core.handle(Inbound(channel="console", user_id="u", event="location",
                                        location=Location(39.98, 116.47)))
    text = replies[0].text
    assert text.index("近处") < text.index("远处") and "无坐标" not in text and "km" in text


async def test_publish_summary_edits_the_time_and_asks_the_end_again(console, sessions, clock) -> None:
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    coord = console("coord")
    await coord.send("发布活动")
    for answer in ("周末义诊", "无", "义诊健康", "社区医院", "跳过", "3月20日 9:00", "对", "11:00"):
        await coord.send(answer)
    summary = await coord.send("5")
    assert "确认发布" in summary and "09:00–11:00" in summary and "修改" in summary
    await coord.send("修改")
    assert "开始时间" in await coord.send("时间")
    assert "对吗" in await coord.send("3月21日 14:00")
    assert "结束时间" in await coord.send("对")  # a new start asks for the end again
    summary = await coord.send("16:00")
    assert "2026-03-21" in summary and "14:00–16:00" in summary
    assert "活动已发布" in await coord.send("确认发布")
    async with sessions() as session:
        activity = (await session.exec(select(Activity))).one()
    assert activity.capacity == 5 and activity.end_at - activity.start_at == timedelta(hours=2)
