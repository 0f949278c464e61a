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


async def test_national_days_are_the_admins_and_a_stations_days_its_coordinators(console, sessions, clock) -> None:
    await _load(sessions, clock)
    assert "只有协调员或管理员" in await console("vol").send("节日管理")
    await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    await make_coordinator(sessions, channel="console", user="other", org="花家地社区志愿服务站")
    coord = console("coord")
    listing = await coord.send("节日管理")
    assert "2026 年节日提醒" in listing and "10-18 重阳节" in listing and "03-05" in listing
    details = await coord.send("重阳节")
    assert "农历9月9日" in details and "今年 2026-10-18" in details
    # a station's coordinator switches off or rewrites a national day for nobody
    assert "只有管理员可以修改" in await coord.send("关闭提醒")
    async with sessions() as session:
        chongyang = (await session.exec(select(Observance).where(Observance.name == "重阳节"))).one()
    assert chongyang.active is True
    assert "只有管理员可以修改" in await coord.send(f"/obstext {chongyang.id}")
    assert "只有管理员可以修改" in await coord.send(f"/obsoff {chongyang.id}")
    async with sessions() as session:
        assert (await session.get(Observance, chongyang.id)).active is True

    root = console("root")  # an admin (the ADMINS setting)
    assert "已关闭" in await root.send(f"/obsoff {chongyang.id}")
    assert "（已关闭）" in await root.send("节日管理")
    await root.send(f"/obstext {chongyang.id}")
    assert "已更新" in await root.send("重阳节到了，一起去敬老院陪老人包饺子吧！")
    async with sessions() as session:
        changed = await session.get(Observance, chongyang.id)
        assert changed.active is False and changed.reminder_text.startswith("重阳节到了")

    # the station's own day: its coordinators edit it, another station's do not
    await coord.send("添加纪念日")
    await coord.send("社区邻里节")
    assert "没能读懂" in await coord.send("每年夏天")
    await coord.send("6月第二个周六")
    added = await coord.send("邻里节到了，来参加社区活动吧")
    assert "已添加「社区邻里节」" in added and "今年 2026-06-13" in added
    async with sessions() as session:
        own = (await session.exec(select(Observance).where(Observance.name == "社区邻里节"))).one()
    assert own.organization_id is not None
    assert "只有该组织的协调员" in await console("other").send(f"/obsoff {own.id}")
    assert "「社区邻里节」的提醒已关闭" in await coord.send(f"/obsoff {own.id}")


async def test_revoked_coordinator_cannot_finish_editing_a_days_text(console, sessions, clock) -> None:
    from services.people import revoke_role
    from tests.helpers import person_of

    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    coord = console("coord")
    await coord.send("添加纪念日")
    await coord.send("社区邻里节")
    await coord.send("6月第二个周六")
    assert "已添加" in await coord.send("邻里节到了，来参加社区活动吧")
    async with sessions() as session:
        own = (await session.exec(select(Observance).where(Observance.name == "社区邻里节"))).one()
    assert "提醒文字" in await coord.send(f"/obstext {own.id}")
    person = await person_of(sessions, "console", "coord")
    async with sessions() as session:
        await revoke_role(session, person_id=person.id, role="coordinator", organization_id=org)
        await session.commit()
    assert "只有协调员或管理员" in await coord.send("改掉的文字，不该保存")
    async with sessions() as session:
        assert (await session.get(Observance, own.id)).reminder_text == "邻里节到了，来参加社区活动吧"


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
    root = console("root")  # national days are the admins'
    assert "「植树节」的提醒已关闭" in await root.send(f"/obsoff {arbor.id}")
    assert "「植树节」的提醒已开启" in await root.send(f"/obson {arbor.id}")
    await coord.send("添加纪念日")
    assert "名称需要 2–30 个字" in await coord.send("x")
    assert "节日提醒：关" in await console("vol").send("关闭节日提醒")
