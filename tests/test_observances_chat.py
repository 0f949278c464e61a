"""Coordinators keep the reminder calendar by message."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from bot.scheduler import read_default_observances
from handlers.observances import parse_rule
from models.reminders import Observance
from services.calendar import Rule, RuleError, date_in_year, load_defaults
from tests.helpers import make_coordinator


async def _load(sessions, clock) -> None:
    async with sessions() as session:
        await load_defaults(session, read_default_observances(), now=clock.now)
        await session.commit()


async def test_coordinator_switches_a_day_off_edits_text_and_adds_one(console, sessions, clock) -> None:
    await _load(sessions, clock)
    assert "只有协调员或管理员" in await console("vol").send("节日管理")
    await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    coord = console("coord")
    listing = await coord.send("节日管理")
    assert "2026 年节日提醒" in listing and "10-18 重阳节" in listing and "03-05" in listing
    details = await coord.send("重阳节")
    assert "农历9月9日" in details and "今年 2026-10-18" in details
    assert "已关闭" in await coord.send("关闭提醒")
    async with sessions() as session:
        chongyang = (await session.exec(select(Observance).where(Observance.name == "重阳节"))).one()
    assert chongyang.active is False
    assert "（已关闭）" in await coord.send("节日管理")
    await coord.send(f"/obstext {chongyang.id}")
    assert "已更新" in await coord.send("重阳节到了，一起去敬老院陪老人包饺子吧！")
    async with sessions() as session:
        assert (await session.get(Observance, chongyang.id)).reminder_text.startswith("重阳节到了")

    await coord.send("添加纪念日")
    await coord.send("社区邻里节")
    assert "没能读懂" in await coord.send("每年夏天")
    await coord.send("6月第二个周六")
    added = await coord.send("邻里节到了，来参加社区活动吧")
    assert "已添加「社区邻里节」" in added and "今年 2026-06-13" in added


@pytest.mark.parametrize(("text", "rule", "expected_2026"), [
    ("3月5日", Rule("solar", 3, day=5), date(2026, 3, 5)),
    ("12-05", Rule("solar", 12, day=5), date(2026, 12, 5)),
    ("农历九月初九", Rule("lunar", 9, day=9), date(2026, 10, 18)),
    ("农历正月十五", Rule("lunar", 1, day=15), date(2026, 3, 3)),
    ("5月第三个周日", Rule("nth_weekday", 5, weekday=6, nth=3), date(2026, 5, 17)),
    ("11月最后一个星期四", Rule("nth_weekday", 11, weekday=3, nth=-1), date(2026, 11, 26)),
])
def test_rule_parsing(text: str, rule: Rule, expected_2026: date) -> None:
    assert parse_rule(text) == rule
    assert date_in_year(rule, 2026) == expected_2026


def test_unreadable_rule() -> None:
    with pytest.raises(RuleError):
        parse_rule("明年春天")


async def test_switch_buttons_take_typed_ids_and_the_reminder_words_are_the_routers(console, sessions, clock) -> None:
    await _load(sessions, clock)
    await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    coord = console("coord")
    assert "过期" in await coord.send("/obsoff abc")  # not an id: the common expired-choice answer
    assert "找不到这个节日" in await coord.send("/obsoff 99999")
    async with sessions() as session:
        arbor = (await session.exec(select(Observance).where(Observance.name == "植树节"))).one()
    assert "「植树节」的提醒已关闭" in await coord.send(f"/obsoff {arbor.id}")
    assert "「植树节」的提醒已开启" in await coord.send(f"/obson {arbor.id}")
    await coord.send("添加纪念日")
    assert "名称需要 2–30 个字" in await coord.send("x")
    assert "节日提醒：关" in await console("vol").send("关闭节日提醒")
