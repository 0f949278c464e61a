"""Hours: coordinators record (all at once, one by one, capped); volunteers ask in plain words."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from models import HourRecord
from services.hours import STAR_THRESHOLDS, star_level
from tests.helpers import add_activity, make_coordinator, register


async def _attend(console, name: str, serial: int) -> None:
    channel = console(name)
    await register(channel, {"amy": "艾米", "ben": "本杰", "cat": "凯特"}[name], serial=serial)
    await channel.send("活动")
    await channel.send("1")
    assert "报名成功" in await channel.send("报名参加")


async def test_record_all_then_one_by_one_with_cap(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    for serial, name in enumerate(("amy", "ben"), 50):
        await _attend(console, name, serial)
    coord = console("coord")
    assert "还没开始" in await coord.send(f"/rec {activity.id}")
    clock.advance(days=1, hours=4)
    menu = await coord.send("记录时长")
    assert activity.title in menu
    pending = await coord.send("1")
    assert "待记录 2 人" in pending and "艾米" in pending and "全部记 3 小时" in pending
    ask = await coord.send("艾米")
    assert "不超过 3" in ask
    assert "不能超过活动时长 3 小时" in await coord.send("5")
    assert "已为 艾米 记录 2.5 小时" in await coord.send("2.5")
    done = await coord.send("1")  # "全部记 3 小时" for those still without hours
    assert "已为 本杰 记录 3 小时" in done
    async with sessions() as session:
        records = {r.person_id: r for r in await session.exec(select(HourRecord))}
    assert sorted(r.hours for r in records.values()) == [2.5, 3.0]
    assert all(r.served_on == date(2026, 3, 2) and r.recorded_by is not None for r in records.values())

    amy = console("amy")
    summary = await amy.send("我一共服务了多少小时")
    assert "累计志愿服务时长：2.5 小时" in summary and "今年：2.5 小时" in summary
    assert "距离1星（100 小时）还差 97.5 小时" in summary and "记录人" in summary and activity.title in summary
    english = await console("amy").send("how many hours have I volunteered")
    assert "Total service hours: 2.5" in english


async def test_checkin_and_checkout_record_hours_capped_at_activity_length(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=2)
    await _attend(console, "cat", 60)
    cat = console("cat")
    clock.advance(days=1, minutes=-30)
    assert "签到成功" in await cat.send(f"/start checkin_{activity.checkin_code}")
    clock.advance(hours=4)
    assert "记录服务时长 2 小时" in await cat.send(f"/start checkout_{activity.checkin_code}")
    assert "签到码无效" in await cat.send("/checkin nosuchcode")


@pytest.mark.parametrize(("total", "expected"), [
    (0, (0, 100)), (99.5, (0, 0.5)), (100, (1, 200)), (599, (2, 1)), (1000, (4, 500)), (1500, (5, None)),
])
def test_star_levels(total: float, expected: tuple[int, float | None]) -> None:
    assert star_level(total) == expected
    assert STAR_THRESHOLDS == (100, 300, 600, 1000, 1500)
