"""The one Chinese time reader (common/timeparse.py): a table of phrases and their readings at a fixed
``now``, then whole conversations that use it (publishing an activity, hours) and the reminders' words."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from common.timeparse import (
    MonthDay,
    When,
    find_day,
    find_duration_hours,
    find_period,
    parse_day,
    parse_duration_hours,
    parse_end,
    parse_month_day,
    parse_period,
    parse_when,
)
from models import Activity, Delivery, HourRecord
from services.reminders import queue_activity_reminders
from tests.helpers import add_activity, make_coordinator, register
from tests.reminder_helpers import org_with_activity

NOW = datetime(2026, 11, 25, 10, 0)  # a Wednesday morning; lunar 2026-10-17
TZ = ZoneInfo("Asia/Shanghai")

# phrase → "YYYY-MM-DD HH:MM" (a day alone: "YYYY-MM-DD"; a range adds "–HH:MM"; "?" = the hour was a
# guess, no 上午/下午 given); None = refused
WHEN: list[tuple[str, str | None]] = [
    # dates with times
    ("12月20日 下午2点半", "2026-12-20 14:30"),
    ("12月20日下午2点半", "2026-12-20 14:30"),
    ("12月20号 下午两点半", "2026-12-20 14:30"),
    ("12月20日 14:30", "2026-12-20 14:30"),
    ("12月20日 九点", "2026-12-20 09:00?"),
    ("12/20 9点", "2026-12-20 09:00?"),
    ("12/20 14:30", "2026-12-20 14:30"),
    ("2026-12-05 09:00", "2026-12-05 09:00"),
    ("2026/12/5 14:00", "2026-12-05 14:00"),
    ("2027年1月3日 上午9点", "2027-01-03 09:00"),
    ("2027年1月3日 14:00", "2027-01-03 14:00"),
    ("二〇二七年一月三日 下午两点", "2027-01-03 14:00"),
    ("1/5 14:00", "2027-01-05 14:00"),  # past without a year → next year
    ("11月1日 上午9点", "2027-11-01 09:00"),
    ("11月25日 下午3点", "2026-11-25 15:00"),  # today
    ("十二月二十日 上午十点", "2026-12-20 10:00"),
    ("20号下午3点", "2026-12-20 15:00"),  # the 20th: of this month, or the next once past
    ("30号 上午9点", "2026-11-30 09:00"),
    ("12月20日 下午2点半开始", "2026-12-20 14:30"),
    ("１２月２０日 下午２点半", "2026-12-20 14:30"),  # full-width digits
    ("2026-12-20（周日）14:30", "2026-12-20 14:30"),  # the reading shown back, typed again
    ("12月20日 周日 下午2点", "2026-12-20 14:00"),
    ("明天周四上午9点", "2026-11-26 09:00"),
    ("12月20日周六 下午2点", None),  # 12/20 is a Sunday: which did they mean?
    ("12月20日下午2:30到5点", "2026-12-20 14:30–17:00"),
    ("12月20日14时30分", "2026-12-20 14:30"),
    ("二十点", "2026-11-25 20:00"),
    ("早上八点半", "2026-11-26 08:30"),
    # relative days
    ("明天下午3点", "2026-11-26 15:00"),
    ("明天 上午9点", "2026-11-26 09:00"),
    ("明天晚上7点半", "2026-11-26 19:30"),
    ("明天下午3点左右", "2026-11-26 15:00"),
    ("后天上午十点", "2026-11-27 10:00"),
    ("后天 9:00", "2026-11-27 09:00"),
    ("大后天下午2点", "2026-11-28 14:00"),
    ("今天下午4点", "2026-11-25 16:00"),
    ("今晚8点", "2026-11-25 20:00"),
    ("明早8点", "2026-11-26 08:00"),
    ("明晚7点", "2026-11-26 19:00"),
    ("今天晚上十一点", "2026-11-25 23:00"),
    # weekdays
    ("周六 9:00", "2026-11-28 09:00"),
    ("周六上午9点", "2026-11-28 09:00"),
    ("周三晚上7点", "2026-11-25 19:00"),  # today, still to come
    ("周三上午9点", "2026-12-02 09:00"),  # today's has passed → next week
    ("星期五下午三点", "2026-11-27 15:00"),
    ("礼拜天下午两点", "2026-11-29 14:00"),
    ("礼拜日上午十点", "2026-11-29 10:00"),
    ("星期日 10:00", "2026-11-29 10:00"),
    ("週六下午3點", "2026-11-28 15:00"),  # 繁體
    ("这周五下午3点", "2026-11-27 15:00"),
    ("这周一上午9点", "2026-11-23 09:00"),  # this week's Monday, past: the dialog refuses it
    ("本周六 14:00", "2026-11-28 14:00"),
    ("下周六上午9点", "2026-12-05 09:00"),
    ("下周一 9:30", "2026-11-30 09:30"),
    ("下个星期三下午2点", "2026-12-02 14:00"),
    ("下下周日 14:00", "2026-12-13 14:00"),
    ("下下周六上午九点", "2026-12-12 09:00"),
    ("上周六上午9点", "2026-11-21 09:00"),
    # times alone: today, or tomorrow once passed
    ("3点", "2026-11-25 15:00?"),
    ("2点半", "2026-11-25 14:30?"),
    ("九点", "2026-11-26 09:00?"),
    ("10点", "2026-11-25 10:00?"),
    ("十一点", "2026-11-25 11:00?"),
    ("12点", "2026-11-25 12:00"),
    ("14:30", "2026-11-25 14:30"),
    ("9:00", "2026-11-26 09:00"),
    ("3:00", "2026-11-25 15:00?"),
    ("09:00", "2026-11-26 09:00"),
    ("0点", "2026-11-26 00:00"),
    ("18点", "2026-11-25 18:00"),
    ("下午2点", "2026-11-25 14:00"),
    ("下午两点一刻", "2026-11-25 14:15"),
    ("上午十点三刻", "2026-11-25 10:45"),
    ("中午12点", "2026-11-25 12:00"),
    ("中午1点", "2026-11-25 13:00"),
    ("傍晚6点", "2026-11-25 18:00"),
    ("晚上7点", "2026-11-25 19:00"),
    ("凌晨5点", "2026-11-26 05:00"),
    ("晚上12点", "2026-11-26 00:00"),
    ("9点15分", "2026-11-26 09:15?"),
    ("9点05", "2026-11-26 09:05?"),
    ("九点零五分", "2026-11-26 09:05?"),
    ("下午3点整", "2026-11-25 15:00"),
    ("3点钟", "2026-11-25 15:00?"),
    ("下午三点钟", "2026-11-25 15:00"),
    # ranges
    ("9点到11点半", "2026-11-26 09:00–11:30?"),
    ("下午2点-4点", "2026-11-25 14:00–16:00"),
    ("下午2-4点", "2026-11-25 14:00–16:00"),
    ("14:00~16:00", "2026-11-25 14:00–16:00"),
    ("14:00 - 16:00", "2026-11-25 14:00–16:00"),
    ("9:00-11:30", "2026-11-26 09:00–11:30"),
    ("上午9点到下午5点", "2026-11-26 09:00–17:00"),
    ("晚上7点到9点", "2026-11-25 19:00–21:00"),
    ("晚上10点到凌晨2点", "2026-11-25 22:00–2026-11-26 02:00"),
    ("2点到4点", "2026-11-25 14:00–16:00?"),
    ("明天下午2点到5点", "2026-11-26 14:00–17:00"),
    ("12月20日 9点到11点半", "2026-12-20 09:00–11:30?"),
    ("周六 9:00-11:00", "2026-11-28 09:00–11:00"),
    ("2点到下午4点", "2026-11-25 14:00–16:00"),  # the first reads 下午 from the second
    ("10点到晚上8点", "2026-11-25 10:00–20:00?"),
    ("12/20 2-4pm", "2026-12-20 14:00–16:00"),
    ("9-11am", "2026-11-26 09:00–11:00"),
    # a little English
    ("tomorrow 3pm", "2026-11-26 15:00"),
    ("Tomorrow 2:30 PM", "2026-11-26 14:30"),
    ("tonight 8pm", "2026-11-25 20:00"),
    ("下午3pm", None),
    # lunar dates, the next occurrence
    ("农历腊月二十三 上午9点", "2027-01-30 09:00"),
    ("腊月廿三 下午2点", "2027-01-30 14:00"),
    ("腊月廿三", "2027-01-30"),
    ("八月十六 晚上7点", "2027-09-16 19:00"),
    ("正月初一 上午10点", "2027-02-06 10:00"),
    ("正月十五 晚上7点", "2027-02-20 19:00"),
    ("冬月初一 上午9点", "2026-12-09 09:00"),
    ("农历十月二十 上午9点", "2026-11-28 09:00"),
    ("十月十五 上午9点", "2027-11-12 09:00"),  # lunar 10/15 of this year has passed
    ("腊月三十 上午10点", "2027-02-05 10:00"),  # 除夕, the 29th in a short 腊月
    # days alone
    ("12月20日", "2026-12-20"),
    ("明天", "2026-11-26"),
    ("周六", "2026-11-28"),
    # refused
    ("2月30日 9点", None),
    ("25点", None),
    ("13月1日 9点", None),
    ("12月32日 9点", None),
    ("胡说八道", None),
    ("明天上午", None),  # a period but no hour
    ("下午", None),
    ("上午13点", None),
    ("晚上15点", None),
    ("9点70分", None),
    ("12/20/2026", None),
    ("abc", None),
    ("", None),
    ("2点到1点", None),
    ("14:00-13:00", None),
    ("下午2点到上午11点", None),
]


def _reading(when: When | None) -> str | None:
    if when is None:
        return None
    text = f"{when.start:%Y-%m-%d %H:%M}" if when.has_time else f"{when.start:%Y-%m-%d}"
    if when.end is not None:
        text += "–" + (f"{when.end:%H:%M}" if when.end.date() == when.start.date() else f"{when.end:%Y-%m-%d %H:%M}")
    return text + ("?" if when.ambiguous else "")


def test_the_table_has_enough_phrases() -> None:
    assert len(WHEN) >= 80 and len({phrase for phrase, _ in WHEN}) == len(WHEN)


@pytest.mark.parametrize(("phrase", "expected"), WHEN)
def test_parse_when(phrase: str, expected: str | None) -> None:
    assert _reading(parse_when(phrase, now=NOW)) == expected


@pytest.mark.parametrize(("phrase", "expected"), [
    ("两个小时", 2), ("2.5小时", 2.5), ("3h", 3), ("3", 3), ("半小时", 0.5), ("半个小时", 0.5), ("一个半小时", 1.5),
    ("两个半钟头", 2.5), ("1小时30分", 1.5), ("90分钟", 1.5), ("三小时", 3), ("十个小时", 10), ("2 小时", 2),
    ("0", None), ("-1", None), ("abc", None), ("半", None), ("两个小时以上吧", None), ("1小时75分", None),
])
def test_parse_duration_hours(phrase: str, expected: float | None) -> None:
    assert parse_duration_hours(phrase) == expected


@pytest.mark.parametrize(("phrase", "past", "expected"), [
    ("12月", False, ("2026-12-01", "2026-12-31")),
    ("1月", False, ("2027-01-01", "2027-01-31")),  # the next January
    ("1月", True, ("2026-01-01", "2026-01-31")),  # the last one, for records
    ("2026年12月", False, ("2026-12-01", "2026-12-31")),
    ("周末", False, ("2026-11-28", "2026-11-29")),
    ("下周末", False, ("2026-12-05", "2026-12-06")),
    ("这周", False, ("2026-11-23", "2026-11-29")),
    ("下周", False, ("2026-11-30", "2026-12-06")),
    ("上周", False, ("2026-11-16", "2026-11-22")),
    ("这个月", False, ("2026-11-01", "2026-11-30")),
    ("上个月", False, ("2026-10-01", "2026-10-31")),
    ("下个月", False, ("2026-12-01", "2026-12-31")),
    ("今年", False, ("2026-01-01", "2026-12-31")),
    ("去年", False, ("2025-01-01", "2025-12-31")),
    ("2025年", False, ("2025-01-01", "2025-12-31")),
    ("明天", False, ("2026-11-26", "2026-11-26")),
    ("12月1日到12月15日", False, ("2026-12-01", "2026-12-15")),
    ("什么时候", False, None),
    ("13月", False, None),
])
def test_parse_period(phrase: str, past: bool, expected: tuple[str, str] | None) -> None:
    found = parse_period(phrase, today=NOW.date(), past=past)
    assert (tuple(d.isoformat() for d in found) if found else None) == expected


@pytest.mark.parametrize(("phrase", "past", "expected"), [
    ("12月3日", False, "2026-12-03"), ("12月3日", True, "2025-12-03"), ("12/3", False, "2026-12-03"),
    ("昨天", False, "2026-11-24"), ("前天", True, "2026-11-23"), ("上周六", False, "2026-11-21"),
    ("周六", True, "2026-11-21"), ("腊月廿三", False, "2027-01-30"), ("腊月廿三", True, "2026-02-10"),
    ("2027年1月3日", False, "2027-01-03"), ("2月30日", False, None), ("明天下午3点", False, None),
])
def test_parse_day(phrase: str, past: bool, expected: str | None) -> None:
    found = parse_day(phrase, today=NOW.date(), past=past)
    assert (found.isoformat() if found else None) == expected


def test_find_day_inside_a_sentence() -> None:
    assert find_day("12月3日那次应该是3小时", today=NOW.date(), past=True) == (date(2025, 12, 3), 0, 5)
    assert find_day("上周六去敬老院的那次", today=NOW.date(), past=True) == (date(2026, 11, 21), 0, 3)
    assert find_day("我想改一下时长", today=NOW.date()) is None


@pytest.mark.parametrize(("phrase", "expected"), [
    ("下午5点", "2026-12-20 17:00"), ("5点", "2026-12-20 17:00"), ("17:00", "2026-12-20 17:00"),
    ("16点半", "2026-12-20 16:30"), ("晚上7点", "2026-12-20 19:00"), ("12月21日 上午10点", "2026-12-21 10:00"),
    ("8:00", None), ("上午9点", None), ("14:00", None), ("不知道", None),
])
def test_parse_end_after_a_start(phrase: str, expected: str | None) -> None:
    found = parse_end(phrase, start=datetime(2026, 12, 20, 14, 30))
    assert (f"{found:%Y-%m-%d %H:%M}" if found else None) == expected


# ---- whole conversations ---------------------------------------------------------------------------
async def _start_publishing(console, sessions):  # noqa: ANN001, ANN202 - fixtures
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    coord = console("coord")
    await coord.send("发布活动")
    for answer in ("冬季送温暖", "给独居老人送棉衣", "助老服务", "花家地社区活动中心"):
        await coord.send(answer)
    assert "开始时间" in await coord.send("跳过")
    return coord


async def _published(sessions) -> Activity:  # noqa: ANN001
    async with sessions() as session:
        return (await session.exec(select(Activity))).one()


async def test_publishing_with_a_chinese_time_asks_back_then_stores_it(console, sessions, clock) -> None:
    coord = await _start_publishing(console, sessions)
    assert "几点开始" in await coord.send("12月20日")
    assert "没看懂" in await coord.send("下个月吧")
    assert "2026-12-20（周日）14:30，对吗？" in await coord.send("12月20日 下午2点半")
    assert "结束时间" in await coord.send("对")
    assert "多少名" in await coord.send("下午5点")
    summary = await coord.send("8")
    assert "14:30–17:00" in summary and "2026-12-20" in summary
    assert "活动已发布" in await coord.send("确认发布")
    activity = await _published(sessions)
    # 14:30 in Beijing is 06:30 UTC
    assert (activity.start_at.hour, activity.start_at.minute) == (6, 30)
    assert activity.end_at - activity.start_at == timedelta(hours=2, minutes=30)


async def test_a_range_fills_the_end_and_a_guessed_hour_can_be_corrected(console, sessions, clock) -> None:
    coord = await _start_publishing(console, sessions)
    guess = await coord.send("3月7日 3点到5点")  # no 上午/下午: read as the afternoon, and said so
    assert "2026-03-07（周六）15:00–17:00" in guess and "按下午理解" in guess and "对吗" in guess
    assert "重新输入" in await coord.send("不对")
    assert "已经过去" in await coord.send("今天上午9点")
    reading = await coord.send("下周六上午9点到11点半")
    assert "2026-03-07（周六）09:00–11:30，对吗？" in reading
    again = await coord.send("3月8日 上午9点到11点半")  # a new answer instead of 对/不对
    assert "2026-03-08（周日）09:00–11:30，对吗？" in again
    assert "多少名" in await coord.send("对")  # the range gave the end: not asked
    assert "09:00–11:30" in await coord.send("8")
    assert "活动已发布" in await coord.send("确认发布")
    activity = await _published(sessions)
    assert activity.start_at.day == 8 and activity.start_at.hour == 1 and activity.end_at.hour == 3


async def test_publishing_on_a_lunar_date(console, sessions, clock) -> None:
    coord = await _start_publishing(console, sessions)
    assert "2027-01-30（周六）09:00，对吗？" in await coord.send("农历腊月廿三 上午9点")
    await coord.send("对")
    await coord.send("11点")  # after 09:00: 11:00
    assert "09:00–11:00" in await coord.send("10")
    await coord.send("确认发布")
    activity = await _published(sessions)
    assert activity.start_at.date() == date(2027, 1, 30) and activity.end_at.hour == 3


async def test_hours_typed_in_chinese_words(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    amy = console("amy")
    await register(amy, "艾米", serial=50)
    assert "报名成功" in await amy.send(f"/join {activity.id}")
    clock.advance(days=1, hours=4)
    coord = console("coord")
    await coord.send("记录时长")
    await coord.send("1")
    assert "不超过 3" in await coord.send("艾米")
    assert "已为 艾米 记录 1.5 小时" in await coord.send("一个半小时")
    async with sessions() as session:
        record = (await session.exec(select(HourRecord))).one()
    assert record.hours == 1.5


async def test_hours_for_everyone_typed_as_words(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    ben = console("ben")
    await register(ben, "本杰", serial=51)
    await ben.send(f"/join {activity.id}")
    clock.advance(days=1, hours=4)
    coord = console("coord")
    await coord.send("记录时长")
    await coord.send("1")
    assert "已为 本杰 记录 2 小时" in await coord.send("两个小时")


async def test_the_day_before_reminder_says_today_by_the_local_calendar(console, sessions, clock) -> None:
    # 00:48 in Beijing; the activity is at 22:00 the same day, 21 h 12 min away: the 24 h reminder is due
    clock.now = datetime(2026, 3, 1, 16, 48, tzinfo=ZoneInfo("UTC"))
    start = datetime(2026, 3, 2, 14, 0, tzinfo=ZoneInfo("UTC"))  # 22:00 on 2 March in Beijing
    _, activity = await org_with_activity(sessions, start=start)
    alice = console("alice")
    await register(alice, "王小丽", serial=101)
    clock.now -= timedelta(days=2)
    await alice.send(f"/join {activity.id}")
    clock.now += timedelta(days=2)
    async with sessions() as session:
        assert await queue_activity_reminders(session, now=clock.now, tz=TZ) == 1
        await session.commit()
        delivery = (await session.exec(select(Delivery).where(Delivery.source == "activity"))).one()
    assert delivery is not None
    reply = await alice.send("你好")
    assert "今天开始" in reply and "明天" not in reply


@pytest.mark.parametrize(("phrase", "expected"), [
    ("3月5日", MonthDay(3, 5, False)), ("12-05", MonthDay(12, 5, False)), ("农历九月初九", MonthDay(9, 9, True)),
    ("九月初九", MonthDay(9, 9, True)), ("腊月廿三", MonthDay(12, 23, True)), ("农历9月9日", MonthDay(9, 9, True)),
    ("十二月二十日", MonthDay(12, 20, False)), ("2027年1月3日", None), ("13月1日", None), ("农历正月三十一", None),
])
def test_parse_month_day_for_yearly_rules(phrase: str, expected: MonthDay | None) -> None:
    assert parse_month_day(phrase) == expected


def test_periods_and_durations_inside_sentences() -> None:
    today = NOW.date()
    assert find_period("12月的活动", today=today) == ((date(2026, 12, 1), date(2026, 12, 31)), 0, 3)
    assert find_period("周末有什么助老活动", today=today) == ((date(2026, 11, 28), date(2026, 11, 29)), 0, 2)
    assert find_period("上个月我的时长", today=today)[0] == (date(2026, 10, 1), date(2026, 10, 31))
    assert find_period("搜索活动 助老", today=today) is None
    assert find_duration_hours("12月3日那次应该是3小时") == (3.0, 10, 13)
    assert find_duration_hours("我干了两个半小时") == (2.5, 3, 8)
    assert find_duration_hours("12月3日") is None
