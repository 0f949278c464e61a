"""Observance dates (solar, lunar, nth weekday) against published dates; the calendar CLI; observance reminders."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from bot.scheduler import read_default_observances
from models import Delivery
from models.reminders import Observance, ReminderKey
from services.calendar import (
    Rule,
    RuleError,
    date_in_year,
    dates_between,
    load_defaults,
    validate,
    year_calendar,
)
from services.reminders import queue_observance_reminders, set_preference
from tests.helpers import shown
from tests.reminder_helpers import add_volunteers, org_with_activity

TZ = ZoneInfo("Asia/Shanghai")
DEFAULTS = {item["code"]: item for item in read_default_observances()}


def rule_of(code: str) -> Rule:
    item = DEFAULTS[code]
    return Rule(item["rule"], item["month"], item.get("day"), item.get("weekday"), item.get("nth"))


@pytest.mark.parametrize(("code", "year", "expected"), [
    ("double_ninth", 2025, date(2025, 10, 29)),
    ("double_ninth", 2026, date(2026, 10, 18)),
    ("double_ninth", 2027, date(2027, 10, 8)),
    ("disability_day_cn", 2025, date(2025, 5, 18)),
    ("disability_day_cn", 2026, date(2026, 5, 17)),
    ("disability_day_cn", 2027, date(2027, 5, 16)),
    ("spring_festival", 2025, date(2025, 1, 29)),
    ("spring_festival", 2026, date(2026, 2, 17)),
    ("spring_festival", 2027, date(2027, 2, 6)),
    ("lantern_festival", 2026, date(2026, 3, 3)),
    ("dragon_boat", 2025, date(2025, 5, 31)),
    ("dragon_boat", 2026, date(2026, 6, 19)),
    ("mid_autumn", 2025, date(2025, 10, 6)),
    ("mid_autumn", 2026, date(2026, 9, 25)),
    ("mid_autumn", 2027, date(2027, 9, 15)),
    ("lei_feng_day", 2026, date(2026, 3, 5)),
    ("volunteer_day", 2027, date(2027, 12, 5)),
])
def test_published_dates(code: str, year: int, expected: date) -> None:
    assert date_in_year(rule_of(code), year) == expected


def test_rule_edge_cases() -> None:
    assert date_in_year(Rule("nth_weekday", 5, weekday=6, nth=-1), 2026) == date(2026, 5, 31)
    assert date_in_year(Rule("solar", 2, 29), 2027) is None and date_in_year(Rule("solar", 2, 29), 2028)
    with pytest.raises(RuleError):
        date_in_year(Rule("nth_weekday", 2, weekday=0, nth=5), 2026)  # February 2026 has four Mondays
    with pytest.raises(RuleError):
        validate(Rule("solar", 4, 31))
    with pytest.raises(RuleError):
        validate(Rule("weekly", 4, 1))
    # the Spring Festival of lunar year 2027 is found when the window starts in January 2027
    assert dates_between(rule_of("spring_festival"), date(2027, 1, 1), date(2027, 3, 1)) == [date(2027, 2, 6)]


def test_every_default_day_dates_2025_to_2027() -> None:
    for code in DEFAULTS:
        for year in (2025, 2026, 2027):
            day = date_in_year(rule_of(code), year)
            assert day is not None and day.year == year, (code, year)


async def test_defaults_load_once_and_keep_coordinator_edits(sessions) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    async with sessions() as session:
        assert await load_defaults(session, DEFAULTS.values(), now=now) == (len(DEFAULTS), 0)
        await session.commit()
    async with sessions() as session:
        arbor = (await session.exec(select(Observance).where(Observance.code == "arbor_day"))).one()
        arbor.reminder_text, arbor.active = "植树节改了文字", False
        session.add(arbor)
        await session.commit()
    async with sessions() as session:
        assert await load_defaults(session, DEFAULTS.values(), now=now) == (0, 0)
        await session.commit()
        arbor = (await session.exec(select(Observance).where(Observance.code == "arbor_day"))).one()
        assert arbor.reminder_text == "植树节改了文字" and not arbor.active
        days = {e.observance.code: e.day for e in await year_calendar(session, year=2026)}
        assert "arbor_day" not in days and days["double_ninth"] == date(2026, 10, 18)


def test_calendar_cli_prints_the_year(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cal.db'}")
    result = CliRunner().invoke(app, ["calendar", "2026"])
    assert result.exit_code == 0, result.output
    assert "2026-10-18 周日  重阳节" in result.output
    assert "2026-05-17 周日  全国助残日" in result.output
    assert "2026-02-17" in result.output and "2026-03-05" in result.output
    result = CliRunner().invoke(app, ["observance", "off", "double_ninth"])
    assert result.exit_code == 0, result.output
    assert "重阳节" not in CliRunner().invoke(app, ["calendar", "2026"]).output
    assert "[已关闭 off]" in CliRunner().invoke(app, ["calendar", "2026", "--all"]).output
    bad = CliRunner().invoke(app, ["observance", "set", "odd_day", "--name", "怪日", "--month", "2", "--day", "30"])
    assert bad.exit_code != 0


async def test_observance_reminders_n_days_before_and_on_the_day_once(sessions) -> None:
    async with sessions() as session:
        await load_defaults(session, DEFAULTS.values(), now=datetime(2026, 3, 1, tzinfo=UTC))
        await session.commit()
    # an environment activity on Arbor Day is suggested; an elderly one is not
    _, planting = await org_with_activity(sessions, start=datetime(2026, 3, 12, 1, tzinfo=UTC), category="environment")
    people = await add_volunteers(sessions, 3)
    async with sessions() as session:
        await set_preference(session, person_id=people[2], kind="observance", enabled=False,
                             now=datetime(2026, 3, 1, tzinfo=UTC))
        await session.commit()

    march9_morning = datetime(2026, 3, 9, 0, 30, tzinfo=UTC)  # 08:30 in Beijing, 3 days before 3.12
    for _ in range(2):  # a second run (restart, second scheduler) writes nothing
        async with sessions() as session:
            await queue_observance_reminders(session, now=march9_morning, tz=TZ, default_days_before=3)
            await session.commit()
    async with sessions() as session:
        rows = list(await session.exec(select(Delivery).order_by(Delivery.id)))
        arbor = [r for r in rows if "植树节" in shown(r)]
        assert len(arbor) == 2  # two opted-in volunteers, not the one who switched it off
        assert "还有 3 天" in shown(arbor[0]) and planting.title in shown(arbor[0])
        assert {"label": planting.title[:30], "value": f"act:{planting.id}"} in arbor[0].choices
        # 3.9 itself is 保护母亲河日: its day-of reminder went out in the same run
        assert sum("保护母亲河日" in shown(r) for r in rows) == 2
        assert all(r.due_at == datetime(2026, 3, 9, 1, 0, tzinfo=UTC) for r in rows)  # from 09:00 local
        keys = list(await session.exec(select(ReminderKey)))
        assert len(keys) == 4

    async with sessions() as session:
        await queue_observance_reminders(session, now=datetime(2026, 3, 12, 2, tzinfo=UTC), tz=TZ,
                                         default_days_before=3)
        await session.commit()
        today = [r for r in await session.exec(select(Delivery)) if "【植树节】就是今天" in shown(r)]
        assert len(today) == 2 and all(r.status == "pending" for r in today)
        assert timedelta(0) <= today[0].due_at - datetime(2026, 3, 12, 2, tzinfo=UTC) < timedelta(seconds=1)
