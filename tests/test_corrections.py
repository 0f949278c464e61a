"""Corrections of hour records (办法 Art 12–13): a volunteer asks from 我的记录 or in plain words, a
coordinator of the record's organization approves or rejects with a reason, or corrects / voids a record
directly; the original record is kept and totals, star levels and the ledger count the correction."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import select

from models import Delivery, HourRecord
from models.corrections import HourCorrection
from services.ledger import ledger_csv, ledger_rows
from tests.helpers import add_activity, make_coordinator, person_of, register, shown

STATION = "花家地社区志愿服务站"


async def _served(console, sessions, clock, *, users=(("alice", "王小丽"),), hours: str = "1"):
    """An activity of STATION (3 h, 2026-03-02) that the volunteers attended; the coordinator recorded 3 h each."""
    org = await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    for serial, (user, name) in enumerate(users, 11):
        volunteer = console(user)
        await register(volunteer, name, serial=serial)
        assert "报名成功" in await volunteer.send(f"/join {activity.id}")
    clock.advance(days=1, hours=4)
    coord = console("coord")
    await coord.send(f"/rec {activity.id}")
    assert "记录 3 小时" in await coord.send(hours)
    return org, activity


async def test_explore(console, sessions, clock) -> None:
    org, activity = await _served(console, sessions, clock)
    alice, coord = console("alice"), console("coord")
    for text in ("我的记录", "1", "2", "签退时忘了扫码，实际只待了两小时", "1"):
        print(">>", text, "\n", await alice.send(text))
    for text in ("待审核更正", "1", "批准"):
        print(">>", text, "\n", await coord.send(text))
    for text in ("我的时长", "3月2日那次应该是2.5小时", "1", "写错了", "1"):
        print(">>", text, "\n", await alice.send(text))
    for text in ("待审核更正", "1", "驳回", "没有依据", "更正时长", "1", "1", "作废", "没有到场", "1"):
        print(">>", text, "\n", await coord.send(text))
    for text in ("我的时长", "我的记录"):
        print(">>", text, "\n", await alice.send(text))
    async with sessions() as session:
        rows = await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 12, 31))
    print(ledger_csv(rows).decode())
    assert 0
