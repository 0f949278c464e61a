"""Hours an auditor trusts: self-reported hours wait for a coordinator, 24 h per person and day, pairing only
within the coordinator's organizations, formula-safe exports, waitlist places that never repeat."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import func, select

from bot.channels.console import ConsoleChannel
from handlers.engine import Engine
from handlers.messages import Inbound
from models import HourRecord, Person, Signup
from models.requests import Pairing
from services.ledger import ledger_csv, ledger_rows, safe_cell
from services.requests import RequestError, create_pairing
from tests.helpers import add_activity, make_coordinator, person_of, register

STATION = "花家地社区志愿服务站"


async def _paired_volunteer(console) -> tuple[ConsoleChannel, ConsoleChannel]:
    coord, alice = console("coord"), console("alice")
    await register(alice, "王小丽", serial=11)
    await coord.send("结对帮扶")
    await coord.send("王小丽")
    await coord.send("王奶奶")
    assert "已安排结对" in await coord.send("7")
    return coord, alice


async def test_self_reported_visits_wait_for_review_and_a_day_holds_24_hours(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    await make_coordinator(sessions, channel="console", user="other", org="酒仙桥街道")
    coord, alice = await _paired_volunteer(console)

    # the finding: 5 × 24 h logged within a minute went straight into the ledger
    assert "待协调员审核" in await alice.send("看望王奶奶 24 小时")
    for _ in range(4):
        refused = await alice.send("看望王奶奶 24 小时")
        assert "一天最多 24 小时" in refused and "最多还能记 0 小时" in refused
    async with sessions() as session:
        records = (await session.exec(select(HourRecord))).all()
    assert [(r.hours, r.approved, r.organization_id) for r in records] == [(24.0, False, org)]
    mine = await alice.send("我的时长")
    assert "累计志愿服务时长：0 小时" in mine and "待审核：24 小时" in mine and "星级：暂无星级" in mine
    async with sessions() as session:
        assert await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 12, 31)) == []

    # another station's coordinator neither sees nor decides it
    other = console("other")
    assert "没有待审核的志愿时长" in await other.send("待审核时长")
    assert "只有该组织的协调员" in await other.send(f"/hrsok {records[0].id}")
    assert "只有该组织的协调员" in await other.send(f"/hrsv {records[0].id}")

    listing = await coord.send("待审核时长")
    assert "王小丽" in listing and "24 小时" in listing and "结对帮扶看望 王奶奶" in listing
    assert "通过" in await coord.send("1")
    assert "已通过" in await coord.send("通过")
    assert "已经审核过了" in await coord.send(f"/hrsno {records[0].id}")
    mine = await alice.send("我的时长")
    assert "已通过审核" in mine and "累计志愿服务时长：24 小时" in mine and "待审核" not in mine
    async with sessions() as session:
        record = await session.get(HourRecord, records[0].id)
        coordinator = await person_of(sessions, "console", "coord")
        assert record.approved and record.reviewed_by == coordinator.id and record.reviewed_at is not None
        assert len(await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1),
                                     end=date(2026, 12, 31))) == 1

    # the next day: a rejected visit counts nowhere and frees its hours of the day
    clock.advance(days=1)
    await alice.send("看望王奶奶 3 小时，陪她聊天")
    await coord.send("待审核时长")
    await coord.send("1")
    assert "已驳回" in await coord.send("驳回")
    mine = await alice.send("我的时长")
    assert "未通过审核" in mine and "累计志愿服务时长：24 小时" in mine
    assert "待协调员审核" in await alice.send("看望王奶奶 24 小时")


async def test_a_coordinators_record_is_refused_past_24_hours_on_the_day(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(hours=2), hours=3)
    coord, alice = await _paired_volunteer(console)
    await alice.send(f"/join {activity.id}")
    assert "待协调员审核" in await alice.send("看望王奶奶 22 小时")  # pending hours claim the day too
    clock.advance(hours=6)
    await coord.send(f"/rec {activity.id}")
    refused = await coord.send("1")  # 全部记 3 小时
    assert "已有 22 小时的记录" in refused and "最多还能记 2 小时" in refused
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(HourRecord))).one() == 1
    assert "已为 王小丽 记录 2 小时" in await coord.send("2.0")  # "2" alone would pick the second button
    # the activity's date is the local one (Asia/Shanghai): 10:00 + 2 h on 2026-03-01
    async with sessions() as session:
        days = {r.served_on for r in (await session.exec(select(HourRecord))).all()}
    assert days == {date(2026, 3, 1)}


async def test_pairing_only_within_the_coordinators_organizations(console, sessions, clock) -> None:
    here = await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    there = await make_coordinator(sessions, channel="console", user="other", org="酒仙桥街道")
    elsewhere = await add_activity(sessions, org_id=there, start=clock.now + timedelta(days=2))
    bob = console("bob")
    await register(bob, "赵大刚", serial=12, area="酒仙桥街道")  # a member of 酒仙桥街道
    assert "报名成功" in await bob.send(f"/join {elsewhere.id}")  # bob serves with 酒仙桥街道

    coord = console("coord")
    await coord.send("结对帮扶")
    assert "没有找到名叫「赵大刚」" in await coord.send("赵大刚")  # not even listed with a masked phone
    bob_id = (await person_of(sessions, "console", "bob")).id
    coord_id = (await person_of(sessions, "console", "coord")).id
    async with sessions() as session:
        with pytest.raises(RequestError) as across:
            await create_pairing(session, volunteer_id=bob_id, resident_name="王奶奶", interval_days=7,
                                 coordinator_id=coord_id, organization_id=here, now=clock.now)
        assert across.value.reason == "not_in_org"
        with pytest.raises(RequestError) as foreign:  # naming the other organization does not help
            await create_pairing(session, volunteer_id=bob_id, resident_name="王奶奶", interval_days=7,
                                 coordinator_id=coord_id, organization_id=there, now=clock.now)
        assert foreign.value.reason == "not_manager"
        assert (await session.exec(select(func.count()).select_from(Pairing))).one() == 0
    # the other organization's coordinator pairs him, within that organization
    other = console("other")
    await other.send("结对帮扶")
    await other.send("赵大刚")
    await other.send("李爷爷")
    assert "已安排结对" in await other.send("7")
    async with sessions() as session:
        assert (await session.exec(select(Pairing))).one().organization_id == there


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(value: str) -> None:
    assert safe_cell(value) == "'" + value
    assert safe_cell("王小丽") == "王小丽" and safe_cell("135****5678") == "135****5678"


async def test_exported_ledger_shows_a_formula_name_as_text(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3,
                                  title="=1+2 活动")
    alice = console("alice")
    await register(alice, "王小丽", serial=11)
    await alice.send(f"/join {activity.id}")
    evil = '=HYPERLINK("http://x","y")'
    async with sessions() as session:  # the registration dialog refuses such a name; the ledger must not trust it
        person = await session.get(Person, (await person_of(sessions, "console", "alice")).id)
        person.name = evil
        session.add(person)
        await session.commit()
    clock.advance(days=1, hours=4)
    coord = console("coord")
    await coord.send(f"/rec {activity.id}")
    await coord.send("1")
    async with sessions() as session:
        rows = await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 12, 31))
    cells = list(csv.reader(io.StringIO(ledger_csv(rows).decode("utf-8-sig"))))
    assert cells[1][1] == "'" + evil and cells[1][4] == "'=1+2 活动"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in cells for cell in row)


async def test_waitlist_places_never_repeat_under_concurrent_joins(sessions, options, clock) -> None:
    """50 people join a 5-place activity at once, each turn's clock a little different (several servers):
    every waitlisted person is told a different place, 1..45, the order promotion follows."""
    ticks = iter(range(10_000))

    def skewed() -> datetime:  # a later turn may read an earlier time
        return clock.now - timedelta(milliseconds=next(ticks) % 7)

    core = Engine(sessions, options, clock=skewed)
    org = await make_coordinator(sessions, channel="c", user="c", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), capacity=5)
    for i in range(50):  # 50 people (no registration dialog: the join is what is tested)
        await core.handle(Inbound(channel="console", user_id=f"v{i}", text="你好"))
    async with sessions() as session:
        await session.exec(update(Person).values(status="active"))  # type: ignore[call-overload]
        await session.commit()
    replies = await asyncio.gather(*(
        core.handle(Inbound(channel="console", user_id=f"v{i}", payload=f"join:{activity.id}", message_id=f"j{i}"))
        for i in range(50)
    ))
    texts = [" ".join(r.text for r in reply) for reply in replies]
    places = sorted(int(t.split("候补名单（第 ")[1].split(" ")[0]) for t in texts if "候补名单（第 " in t)
    assert places == list(range(1, 46)), places
    async with sessions() as session:
        statuses = [s.status for s in await session.exec(select(Signup))]
    assert statuses.count("confirmed") == 5 and statuses.count("waitlist") == 45
