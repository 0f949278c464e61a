"""Rosters and search through the console: 查看名单 N typed, check-out, hours and no-shows on the roster,
a coordinator marks a no-show; activities filtered by category, date words and area, in words and buttons."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from models import Activity, ActivityBase, Signup
from services.activities import create_activity
from services.people import get_or_create_organization
from tests.helpers import add_activity, make_coordinator, register


async def test_roster_typed_shows_check_out_hours_and_marks_a_no_show(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(hours=1), hours=2)
    amy, ben = console("amy"), console("ben")
    await register(amy, "艾米", serial=80)
    await register(ben, "本杰", serial=81)
    assert "报名成功" in await amy.send(f"/join {activity.id}")
    assert "报名成功" in await ben.send(f"/join {activity.id}")

    coord = console("coord")
    chooser = await coord.send("查看名单")
    assert "要查看哪个活动的名单" in chooser and "社区敬老院探访" in chooser
    before = await coord.send("1")
    assert "艾米" in before and "报名 03-01 10:00" in before and "标记缺席" not in before  # not started yet

    clock.advance(hours=1)
    assert "签到成功" in await amy.send(f"/checkin {activity.checkin_code}")
    clock.advance(hours=2)
    assert "记录服务时长 2 小时" in await amy.send(f"/checkout {activity.checkin_code}")

    roster = await coord.send(f"查看名单 {activity.id}")
    assert "签到 03-01 11:00 · 签退 03-01 13:00 · 2 小时" in roster
    assert "本杰" in roster and "未签到" in roster and "标记缺席：本杰" in roster and "标记缺席：艾米" not in roster
    marked = await coord.send("标记缺席：本杰")
    assert "已标记缺席" in marked and "2. 本杰 138****8000\n   报名 03-01 10:00 · 缺席" in marked and "取消缺席：本杰" in marked
    async with sessions() as session:
        signups = {s.person_id: s for s in await session.exec(select(Signup))}
    assert sum(s.no_show_at is not None for s in signups.values()) == 1
    assert "已取消缺席标记" in await coord.send("取消缺席：本杰")
    assert "只有该组织的协调员" in await amy.send(f"查看名单 {activity.id}")
    assert "只有协调员或管理员" in await amy.send("查看名单")


async def _activities(sessions, clock):  # noqa: ANN001, ANN202
    """Sunday Mar 1 10:00 in Beijing: activities on the coming days in two organizations."""
    async with sessions() as session:
        huajia = await get_or_create_organization(session, name="花家地社区")
        wangjing = await get_or_create_organization(session, name="望京街道")
        rows = [
            ("周六敬老院探访", "elderly", 6, huajia.id, "幸福敬老院"),       # Sat Mar 7
            ("周三助老理发", "elderly", 3, wangjing.id, "望京活动中心"),     # Wed Mar 4
            ("周日河道清洁", "environment", 7, wangjing.id, "亮马河"),       # Sun Mar 8
            ("三月底义诊", "health", 20, huajia.id, "社区卫生站"),           # Sat Mar 21
            ("四月植树", "environment", 35, huajia.id, "望京公园"),          # Apr 5
        ]
        for title, category, days, org_id, place in rows:
            start = clock.now + timedelta(days=days)
            await create_activity(session, data=ActivityBase(
                title=title, category=category, place=place, start_at=start, end_at=start + timedelta(hours=2),
                capacity=5, organization_id=org_id), created_by=None, now=clock.now)
        await session.commit()


async def test_search_in_words(console, sessions, clock) -> None:
    await _activities(sessions, clock)
    clock.advance(days=1)  # Monday: the weekend is Mar 7–8
    amy = console("amy")
    weekend = await amy.send("周末的助老活动")
    assert "周六敬老院探访" in weekend and "周三助老理发" not in weekend and "周日河道清洁" not in weekend
    assert "助老服务" in weekend and "3月7日–3月8日" in weekend
    march = await amy.send("4月的活动")
    assert "四月植树" in march and "三月底义诊" not in march and "1 个" in march
    search = await amy.send("搜索活动 助老")
    assert "周六敬老院探访" in search and "周三助老理发" in search and "河道" not in search
    area = await amy.send("花家地的活动")
    assert "「花家地」" in area and "周六敬老院探访" in area and "三月底义诊" in area and "周三助老理发" not in area
    place = await amy.send("搜索活动 亮马河")
    assert "周日河道清洁" in place and "1 个" in place
    assert "没有找到符合条件的活动" in await amy.send("搜索活动 火星")
    # a LIKE wildcard typed in a search matches itself (望_ would match 望京活动中心)
    assert "没有找到符合条件的活动" in await amy.send("搜索活动 望_活动")
    everything = await amy.send("最近有什么志愿活动?")  # no filter in it: the plain list
    assert "近期志愿活动" in everything and "第 1/2 页" in everything


async def test_search_by_buttons_and_pages(console, sessions, clock) -> None:
    await _activities(sessions, clock)
    amy = console("amy")
    listing = await amy.send("活动")
    assert "按类别" in listing and "本周" in listing and "周末" in listing
    categories = await amy.send("按类别")
    assert "环境保护" in categories and "助老服务" in categories
    green = await amy.send("环境保护")
    assert "周日河道清洁" in green and "四月植树" in green and "周六敬老院" not in green
    await amy.send("活动")
    week = await amy.send("本周")  # Mon Feb 23 – Sun Mar 1: nothing left today
    assert "没有找到符合条件的活动" in week
    await amy.send("活动")
    weekend = await amy.send("周末")  # Sunday: the weekend is today
    assert "没有找到" in weekend
    clock.advance(days=1)  # Monday: this week is Mar 2–8
    await amy.send("活动")
    week = await amy.send("本周")
    assert "3 个，第 1/1 页" in week and "周三助老理发" in week and "三月底义诊" not in week
    page1 = await amy.send("搜索活动 花家地")
    assert "第 1/1 页" in page1
    async with sessions() as session:
        org = (await session.exec(select(Activity).where(Activity.title == "四月植树"))).one().organization_id
        for day in range(3):
            start = clock.now + timedelta(days=40 + day)
            await create_activity(session, data=ActivityBase(
                title=f"花家地五月活动{day}", place="花家地", start_at=start, end_at=start + timedelta(hours=1),
                organization_id=org), created_by=None, now=clock.now)
        await session.commit()
    page1 = await amy.send("搜索活动 花家地")
    assert "6 个，第 1/2 页" in page1 and "下一页" in page1
    page2 = await amy.send("下一页")
    assert "第 2/2 页" in page2 and "「花家地」" in page2 and "花家地五月活动2" in page2
