"""Read-only features read on the turn's connection and open no ORM session (issue 11, 我的时长 p99).

``Turn.reads`` (services/rows.py ``RowSource``, the engine's ``TurnSession``) runs a feature's read in
the turn's transaction without the session; these check that 我的时长 (and its questions), 活动, its
search, 附近, an activity's details, 我的报名 and a coordinator's roles open none and still show the
right figures, and that a read sees what the same turn changed before it (the flush the session's
autoflush would have made).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, select

from handlers.context import CoreOptions
from handlers.engine import Engine, default_routers
from handlers.messages import Inbound, Location
from handlers.turn import FeatureRouter, Turn
from models import HourRecord, Person
from models.corrections import HourCorrection
from models.db import SessionFactory
from services.hours import hours_summary
from services.rows import fetch_rows
from tests.conftest import Clock
from tests.helpers import CountingFactory, add_activity, adult_id, make_coordinator, person_of

_NAME = select(Person.name).where(Person.id == bindparam("person_id"))  # built once: compiled once


def probe_router() -> FeatureRouter:
    router = FeatureRouter("probe")

    @router.command("addhours", words=["记七小时"])
    async def add_hours(turn: Turn, _arg: str) -> None:  # a pending change in the open session, then a read
        assert turn.person.id is not None
        turn.session.add(HourRecord(person_id=turn.person.id, hours=7, served_on=turn.today, created_at=turn.now))
        summary = await hours_summary(turn.reads, person_id=turn.person.id, year=turn.today.year)
        turn.say(f"total={summary.total:g}")

    @router.command("rename", words=["改名再读"])
    async def rename(turn: Turn, _arg: str) -> None:  # the speaker changed without a session, then a read
        turn.person.name = "改过的名字"
        rows = await fetch_rows(turn.reads, _NAME, {"person_id": turn.person.id})
        turn.say(f"name={rows[0][0]}")

    return router


@pytest.fixture
def counting(sessions: SessionFactory) -> CountingFactory:
    return CountingFactory(sessions)


@pytest.fixture
def engine(sessions: SessionFactory, options: CoreOptions, clock: Clock, counting: CountingFactory) -> Engine:
    core = Engine(sessions, options, clock=clock, routers=[*default_routers(), probe_router()])
    core.sessions = counting  # type: ignore[assignment]
    return core


async def say(core: Engine, clock: Clock, user: str, text: str | None = None, **fields: Any) -> str:
    clock.advance(minutes=1)
    replies = await core.handle(Inbound(channel="console", user_id=user, text=text,
                                        message_id=f"{user}-{clock.now.timestamp()}", **fields))
    # the texts and the choices' labels (a page's buttons are part of what it shows)
    return "\n".join([*(reply.text for reply in replies), *(c.label for reply in replies for c in reply.choices)])


@pytest.fixture
async def volunteer(engine: Engine, sessions: SessionFactory, clock: Clock) -> int:
    """A registered volunteer ("vol") with hours (one corrected) and an activity to come."""
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区服务站")
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2), lat=39.98, lon=116.47)
    served = await add_activity(sessions, org_id=org, start=clock.now - timedelta(days=40), title="重阳节敬老活动")
    for text in ("注册", "张三", adult_id(), "13800138000", "1,3", "花家地社区", "1"):
        await say(engine, clock, "vol", text)
    person = await person_of(sessions, "console", "vol")
    assert person.status == "active" and person.id is not None
    async with sessions() as session:
        corrected = HourRecord(person_id=person.id, activity_id=served.id, hours=3, served_on=date(2026, 2, 10),
                               created_at=clock.now)
        session.add_all([corrected, HourRecord(person_id=person.id, hours=2, served_on=date(2025, 6, 1),
                                               created_at=clock.now, note="社区清扫")])
        await session.flush()
        # the coordinator corrected 3 hours to 4: the summary counts 4
        session.add(HourCorrection(record_id=corrected.id, old_hours=3, hours=4, reason="漏记",
                                   requested_by=person.id, requested_at=clock.now, status="approved"))
        await session.commit()
    return person.id


async def test_my_hours_and_its_questions_open_no_session(engine: Engine, clock: Clock, counting: CountingFactory,
                                                          volunteer: int) -> None:
    counting.opened = 0
    summary = await say(engine, clock, "vol", "我的时长")
    assert "累计志愿服务时长：6 小时" in summary and "今年：4 小时" in summary
    assert "2026-02-10 重阳节敬老活动 4 小时" in summary and "2025-06-01 社区清扫 2 小时" in summary
    assert "今年（2026-01-01 至 2026-03-01）你服务了 4 小时" in await say(engine, clock, "vol", "我今年服务了多久")
    assert "「重阳节敬老活动」（2026-02-10）记了 4 小时" in await say(engine, clock, "vol", "重阳节活动给我记了几个小时")
    assert counting.opened == 0


async def test_activities_search_nearby_details_and_mine_open_no_session(engine: Engine, clock: Clock, counting: CountingFactory,
                                                            volunteer: int) -> None:
    counting.opened = 0
    listing = await say(engine, clock, "vol", "活动")
    assert "近期志愿活动（第 1/1 页）" in listing and "社区敬老院探访" in listing
    found = await say(engine, clock, "vol", "搜索活动 幸福敬老院")
    assert "符合条件的活动" in found and "社区敬老院探访" in found
    near = await say(engine, clock, "vol", event="location", location=Location(latitude=39.98, longitude=116.48))
    assert "离你最近的志愿活动" in near and "社区敬老院探访" in near
    details = await say(engine, clock, "vol", "1")  # the nearest one's details page
    assert "【社区敬老院探访】" in details and "名额：0/10" in details and "报名参加" in details
    assert counting.opened == 0
    assert "报名成功" in await say(engine, clock, "vol", "报名参加")  # a write: through the session
    counting.opened = 0
    await say(engine, clock, "vol", "活动")
    details = await say(engine, clock, "vol", "1")
    assert "【社区敬老院探访】" in details and "名额：1/10" in details and "你已报名" in details
    mine = await say(engine, clock, "vol", "我的报名")
    assert "我的报名：" in mine and "社区敬老院探访" in mine and "（候补）" not in mine
    assert counting.opened == 0


async def test_a_coordinators_roles_are_read_without_a_session(engine: Engine, clock: Clock,
                                                               counting: CountingFactory, volunteer: int) -> None:
    counting.opened = 0
    menu = await say(engine, clock, "coord", "帮助")
    assert "协调员：" in menu and counting.opened == 0


async def test_a_read_sees_the_turns_pending_changes(engine: Engine, sessions: SessionFactory, clock: Clock,
                                                     counting: CountingFactory, volunteer: int) -> None:
    # the open session's new record is flushed before the read, which counts it; the turn commits it
    assert "total=13" in await say(engine, clock, "vol", "记七小时")
    assert "累计志愿服务时长：13 小时" in await say(engine, clock, "vol", "我的时长")
    # a change to the speaker made without a session is flushed (through one) before the read
    counting.opened = 0
    assert "name=改过的名字" in await say(engine, clock, "vol", "改名再读")
    assert counting.opened == 1
    assert (await person_of(sessions, "console", "vol")).name == "改过的名字"
