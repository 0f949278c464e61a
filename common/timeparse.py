"""One reader for the Chinese dates, times, durations and periods people type (pure; no database).

``parse_when("12月20日 下午2点半", now=...)`` → When(2026-12-20 14:30); ``parse_duration_hours("一个半小时")``
→ 1.5; ``parse_period("下周", today=...)`` → (Monday, Sunday); ``parse_day("腊月廿三", today=...)`` → the next
such day; ``find_day`` / ``find_period`` / ``find_duration_hours`` pick them out of a sentence. Datetimes are
naive local time (``TIMEZONE``), like the rest of the code. Word lists live in
``common/data/timewords.json``; numbers, lunar dates and the resolution rules are in ``common/timewords.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from common.timewords import (
    NUM,
    WORDS,
    Clock,
    alternation,
    cn_int,
    next_lunar,
    normalize,
    read_clock,
    resolve_end,
    resolve_month_day,
    resolve_solar,
    strip_trailing,
)

__all__ = ["MonthDay", "When", "find_day", "find_duration_hours", "find_period", "parse_day", "parse_duration_hours",
           "parse_end", "parse_month_day", "parse_period", "parse_when"]

T = TypeVar("T")

# what "reasonable" means for a bare hour (3点 → 15:00, 9点 → 09:00): activities happen 7:00–21:59
DAY_HOURS = range(7, 22)


@dataclass(frozen=True, slots=True)
class When:
    """One reading of a phrase: a start, maybe an end (a range), and whether the hour was a guess."""

    start: datetime
    end: datetime | None = None
    ambiguous: bool = False
    has_time: bool = True
    has_date: bool = True


@dataclass(frozen=True, slots=True)
class _Day:
    day: date
    period: str | None  # 今晚 → "evening"
    weekday_only: bool  # a bare 周六: the next one, rolled a week on when its time has passed
    end: int  # where the phrase ends in the text


_W = WORDS
_SEP = alternation(_W["range_separators"])
_FILL = "(?:" + alternation(_W["fillers"]) + ")*"
_YEAR = r"(?:(?P<y>\d{4}|[零〇一二三四五六七八九]{4})" + _W["year_mark"] + ")?"
_MONTH_WORDS = alternation(_W["lunar_months"])
_MD = re.compile(
    "(?P<lunar>" + alternation(_W["lunar_markers"]) + ")?" + _YEAR
    + "(?P<lunar2>" + alternation(_W["lunar_markers"]) + ")?"
    + "(?P<leap>" + alternation(_W["leap"]) + ")?"
    + "(?P<m>" + _MONTH_WORDS + r"|\d{1,2}|[一二三四五六七八九十]{1,3})" + _W["month_mark"]
    + "(?P<d>" + _W["lunar_day_prefix"] + "[一二三四五六七八九十]|" + NUM + ")"
    + "(?P<mark>" + alternation(_W["date_marks"]) + ")?"
)
_NUMERIC = re.compile(r"(?:(?P<y>\d{4})[-/.])?(?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?![\d:]| ?" + alternation(
    [*_W["hour_marks"], *_W["suffix_periods"]]) + ")(?:" + alternation(_W["date_marks"]) + ")?")
_DAY_ONLY = re.compile("(?P<d>" + NUM + ")(?:" + alternation(_W["date_marks"]) + ")")
_RELATIVE = re.compile("(?P<w>" + alternation([*_W["days"], *_W["day_periods"]]) + ")")
_WEEKDAY = re.compile("(?P<pre>" + alternation(_W["week_prefixes"]) + ")?(?:" + alternation(_W["week_words"])
                      + ")(?P<wd>" + alternation(_W["weekdays"]) + ")")


_NOTED_WEEKDAY = re.compile(r" ?[(（]?(?:" + alternation(_W["week_words"]) + ")(?P<wd>" + alternation(_W["weekdays"])
                            + r")[)）]?")


def _match_day(text: str, pos: int, today: date, past: bool) -> _Day | None:
    """The date phrase at ``pos``, with the weekday people add to a date (12月20日（周日）, 明天周四):
    a weekday that is not the date's makes the phrase no date (which did they mean?)."""
    found = _match_date(text, pos, today, past)
    if found is None or found.weekday_only or not (note := _NOTED_WEEKDAY.match(text, found.end)):
        return found
    if _W["weekdays"][note["wd"]] != found.day.weekday():
        return None
    return _Day(found.day, found.period, False, note.end())


def _match_date(text: str, pos: int, today: date, past: bool) -> _Day | None:
    """The date phrase starting at ``pos`` (None: none there, or not a real date)."""
    if match := _RELATIVE.match(text, pos):
        word = match["w"]
        if word in _W["days"]:
            return _Day(today + timedelta(days=_W["days"][word]), None, False, match.end())
        offset, period = _W["day_periods"][word]
        return _Day(today + timedelta(days=offset), period, False, match.end())
    if match := _WEEKDAY.match(text, pos):
        weekday = _W["weekdays"][match["wd"]]
        if match["pre"] is None:
            ahead = (weekday - today.weekday()) % 7
            day = today - timedelta(days=(today.weekday() - weekday) % 7) if past else today + timedelta(days=ahead)
            return _Day(day, None, not past, match.end())
        monday = today - timedelta(days=today.weekday())
        weeks = _W["week_prefixes"][match["pre"]]
        return _Day(monday + timedelta(days=7 * weeks + weekday), None, False, match.end())
    if match := _MD.match(text, pos):
        day = _month_day(match, today, past)
        return _Day(day, None, False, match.end()) if day else None
    if match := _NUMERIC.match(text, pos):
        m, d = int(match["m"]), int(match["d"])
        found = resolve_solar(int(match["y"]) if match["y"] else None, m, d, today, past)
        return _Day(found, None, False, match.end()) if found else None
    if (match := _DAY_ONLY.match(text, pos)) and (number := cn_int(match["d"])) and 1 <= number <= 31:
        found = resolve_month_day(number, today, past)
        return _Day(found, None, False, match.end()) if found else None
    return None


@dataclass(frozen=True, slots=True)
class MonthDay:
    """A month and day as written, without resolving it to a year: 3月5日, 农历九月初九, 腊月廿三."""

    month: int
    day: int
    lunar: bool
    leap: bool = False
    year: int | None = None


def _read_month_day(match: re.Match[str]) -> MonthDay | None:
    month_word, day_word = match["m"], match["d"]
    month = _W["lunar_months"].get(month_word) or cn_int(month_word)
    day = cn_int(day_word.removeprefix(_W["lunar_day_prefix"]))
    if month is None or day is None:
        return None
    # 八月十六 and 初一/廿三 are lunar day names; 十二月二十日 (with 日/号) and 12月20 are solar
    chinese = not month_word.isdigit() and not day_word.isdigit()
    lunar = bool(match["lunar"] or match["lunar2"] or match["leap"] or month_word in _W["lunar_months"]
                 or day_word.startswith((_W["lunar_day_prefix"], "廿", "卅")) or (chinese and not match["mark"]))
    year = cn_int(match["y"], digits=True) if match["y"] else None
    return MonthDay(month, day, lunar, bool(match["leap"]), year)


def _month_day(match: re.Match[str], today: date, past: bool) -> date | None:
    read = _read_month_day(match)
    if read is None:
        return None
    if read.lunar:
        return next_lunar(read.year, read.month, read.day, leap=read.leap, today=today, past=past)
    return resolve_solar(read.year, read.month, read.day, today, past)


def parse_month_day(text: str) -> MonthDay | None:
    """A yearly date as people type it (3月5日, 12-05, 农历九月初九, 腊月廿三), for rules that recur;
    None when it is not one or names a year."""
    text = strip_trailing(normalize(text)).replace(" ", "")
    if (match := _MD.fullmatch(text)) and not match["y"]:
        read = _read_month_day(match)
        limit = 30 if read and read.lunar else 31
        return read if read and 1 <= read.month <= 12 and 1 <= read.day <= limit else None
    if (match := _NUMERIC.fullmatch(text)) and not match["y"]:
        month, day = int(match["m"]), int(match["d"])
        return MonthDay(month, day, False) if 1 <= month <= 12 and 1 <= day <= 31 else None
    return None


_FILLERS = re.compile(_FILL)
_SEPARATOR = re.compile(_SEP)


def _skip(text: str, pos: int) -> int:
    match = _FILLERS.match(text, pos)
    return match.end() if match else pos


def parse_when(text: str, *, now: datetime) -> When | None:
    """A moment (or a range on one day) from what a person typed; None when it is not one.

    Without a year, a date already past means next year; a bare weekday means the next one; a time
    without a date means today, or tomorrow once it has passed. ``ambiguous`` is set when the hour
    had no 上午/下午 and could be either (3点 → 15:00).
    """
    text = strip_trailing(normalize(text))
    if not text:
        return None
    today = now.date()
    found = _match_day(text, 0, today, past=False)
    pos = _skip(text, found.end) if found else 0
    day = found.day if found else today
    clocks = _read_range(text, pos, found.period if found else None)
    if clocks is None:
        if found and found.end == len(text):
            start = datetime.combine(day, datetime.min.time())
            return When(start, None, False, has_time=False, has_date=True)
        return None
    first, second = clocks
    start = datetime.combine(day, datetime.min.time()) + timedelta(minutes=first.minutes)
    end = datetime.combine(day, datetime.min.time()) + timedelta(minutes=second.minutes) if second else None
    if (found is None or found.weekday_only) and start < now:
        shift = timedelta(days=1 if found is None else 7)
        start, end = start + shift, (end + shift if end else None)
    ambiguous = first.ambiguous or bool(second and second.ambiguous)
    return When(start, end, ambiguous, has_time=True, has_date=found is not None)


def _read_range(text: str, pos: int, period: str | None) -> tuple[Clock, Clock | None] | None:
    """One clock time, or two joined by 到/-/~ (the second reads 上午/下午 from the first, and a first
    without one reads it from the second: 2-4pm), to the end."""
    first = read_clock(text, pos, period, DAY_HOURS)
    if first is None:
        return None
    clock, after = first
    if after == len(text):
        return clock, None
    sep = _SEPARATOR.match(text, _skip(text, after))
    if not sep:
        return None
    second = read_clock(text, _skip(text, sep.end()), None, DAY_HOURS)
    if second is None or second[1] != len(text):
        return None
    if clock.period is None and second[0].period is not None:
        hinted = read_clock(text, pos, second[0].period, DAY_HOURS)
        end = resolve_end(hinted[0], second[0]) if hinted is not None else None
        if hinted is not None and end is not None and end.minutes == second[0].minutes:  # not overnight
            return hinted[0], end
    end = resolve_end(clock, second[0])
    return (clock, end) if end else None


def parse_end(text: str, *, start: datetime) -> datetime | None:
    """An end time typed after ``start``: a time on the start's day (下午5点, 17:00, 5点 → 17:00 after
    14:00), or a full date and time. None when it is no time or not after the start."""
    text = strip_trailing(normalize(text))
    if not text:
        return None
    found = _match_day(text, 0, start.date(), past=False)
    if found:
        when = parse_when(text, now=start)
        return when.start if when and when.has_time and when.start > start else None
    read = read_clock(text, 0, None, DAY_HOURS)
    if read is None or read[1] != len(text):
        return None
    base = Clock(start.hour * 60 + start.minute, None, False, start.hour, start.minute)
    end = resolve_end(base, read[0])
    if end is None:
        return None
    return datetime.combine(start.date(), datetime.min.time()) + timedelta(minutes=end.minutes)


def parse_day(text: str, *, today: date, past: bool = False) -> date | None:
    """A day: 12月3日, 12/3, 2027年1月3日, 昨天, 上周六, 周六, 腊月廿三, 农历八月十六.

    Without a year the next such day (``past=True``: the last one, for records already made)."""
    text = strip_trailing(normalize(text))
    found = _match_day(text, 0, today, past)
    return found.day if found and found.end == len(text) else None


def find_day(text: str, *, today: date, past: bool = False) -> tuple[date, int, int] | None:
    """The first day named inside a longer sentence ("12月3日那次应该是3小时"): (day, start, end) in the
    normalized text; None when there is none."""
    text = normalize(text)
    for pos in range(len(text)):
        if found := _match_day(text, pos, today, past):
            return found.day, pos, found.end
    return None


_DURATION = re.compile(
    r"(?P<n>\d{1,3}(?:\.\d{1,2})?|" + NUM + ")?(?:" + alternation(_W["counter"]) + ")?(?P<half>" + _W["half"]
    + ")?(?:" + alternation(_W["duration_units"]) + ")?(?:(?P<half2>" + _W["half"] + ")|(?P<mi>\\d{1,3}|" + NUM
    + ")(?:" + alternation(_W["duration_minutes"]) + "))?")
_MINUTES_ONLY = re.compile(r"(?P<mi>\d{1,4}|" + NUM + ")(?:" + alternation(_W["duration_minutes"]) + ")")


def parse_duration_hours(text: str) -> float | None:
    """Hours from '两个小时', '2.5小时', '3h', '3', '半小时', '一个半小时', '1小时30分', '90分钟'; None otherwise."""
    text = strip_trailing(normalize(text)).lower().replace(" ", "")
    if not text:
        return None
    if match := _MINUTES_ONLY.fullmatch(text):
        minutes = cn_int(match["mi"])
        return round(minutes / 60, 2) if minutes else None
    match = _DURATION.fullmatch(text)
    if not match or not (match["n"] or match["half"]):
        return None
    if match["half"] and not match["n"] and text == _W["half"]:
        return None
    number = float(match["n"]) if match["n"] and re.fullmatch(r"[\d.]+", match["n"]) else (
        cn_int(match["n"]) if match["n"] else 0)
    if number is None:
        return None
    minutes = cn_int(match["mi"]) if match["mi"] else 0
    if minutes is None or minutes >= 60:
        return None
    value = number + (0.5 if match["half"] or match["half2"] else 0) + minutes / 60
    return round(value, 2) if value > 0 else None


def _month_range(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following - timedelta(days=1)


_YEAR_ONLY = re.compile(r"(?P<y>\d{4})" + _W["year_mark"])
_MONTH_ONLY = re.compile(r"(?:(?P<y>\d{4})(?:" + _W["year_mark"] + r"|[-/.]))?(?P<m>\d{1,2}|[一二三四五六七八九十]{1,3})"
                         + "(?:" + _W["month_mark"] + r"(?:份)?)?")
_WEEKEND = re.compile("(?P<pre>" + alternation(_W["week_prefixes"]) + ")?(?:" + alternation(_W["week_words"])
                      + ")" + _W["weekend"])


def parse_period(text: str, *, today: date, past: bool = False) -> tuple[date, date] | None:
    """An inclusive range of days: 12月, 2026年12月, 周末, 这周, 下周, 这个月, 上个月, 今年, 去年, 2026年,
    a single day (明天, 12月3日), or two days joined by 到 (12月1日到12月15日).

    A month without a year is the next one not yet over (``past=True``: the last one begun)."""
    text = strip_trailing(normalize(text))
    if not text:
        return None
    if text in _W["years"]:
        year = today.year + _W["years"][text]
        return date(year, 1, 1), date(year, 12, 31)
    if text in _W["months"]:
        shift = today.month - 1 + _W["months"][text]
        return _month_range(today.year + shift // 12, shift % 12 + 1)
    monday = today - timedelta(days=today.weekday())
    if text in _W["weeks"]:
        first = monday + timedelta(days=7 * _W["weeks"][text])
        return first, first + timedelta(days=6)
    if match := _WEEKEND.fullmatch(text):
        weeks = _W["week_prefixes"][match["pre"]] if match["pre"] else 0
        saturday = monday + timedelta(days=7 * weeks + 5)
        return saturday, saturday + timedelta(days=1)
    if match := _YEAR_ONLY.fullmatch(text):
        year = int(match["y"])
        return date(year, 1, 1), date(year, 12, 31)
    if (match := _MONTH_ONLY.fullmatch(text)) and (match["y"] or text.endswith(_W["month_mark"])
                                                    or text.endswith("份")):
        return _month_period(match, today, past)
    if day := parse_day(text, today=today, past=past):
        return day, day
    parts = re.split(_SEP, text, maxsplit=1)
    if len(parts) == 2:
        first = parse_day(parts[0], today=today, past=past)
        last = parse_day(parts[1], today=first or today, past=past)
        if first and last and first <= last:
            return first, last
    return None


def _month_period(match: re.Match[str], today: date, past: bool) -> tuple[date, date] | None:
    month = cn_int(match["m"])
    if month is None or not 1 <= month <= 12:
        return None
    if match["y"]:
        return _month_range(int(match["y"]), month)
    year = today.year
    if not past and month < today.month:
        year += 1
    if past and month > today.month:
        year -= 1
    return _month_range(year, month)


def _longest_within(text: str, read: Callable[[str], T | None], longest: int) -> tuple[T, int, int] | None:
    """The earliest, then longest, piece of ``text`` (at most ``longest`` characters) that ``read`` accepts."""
    for pos in range(len(text)):
        for end in range(min(len(text), pos + longest), pos, -1):
            if (found := read(text[pos:end])) is not None:
                return found, pos, end
    return None


def find_period(text: str, *, today: date, past: bool = False) -> tuple[tuple[date, date], int, int] | None:
    """The first period named inside a sentence ("12月的活动", "周末有什么助老活动", "上个月我的时长"):
    ((first, last), start, end) in the normalized text; None when there is none."""
    text = normalize(text)
    return _longest_within(text, lambda piece: parse_period(piece, today=today, past=past)
                           if piece[0] not in _W["fillers"] else None, 16)


_UNIT_WORDS = (*_W["duration_units"], *_W["duration_minutes"], _W["half"])


def find_duration_hours(text: str) -> tuple[float, int, int] | None:
    """The first duration with a unit inside a sentence ("那次应该是3小时", "我干了两个半小时"):
    (hours, start, end) in the normalized text; a bare number is not taken (it may be a date's)."""
    text = normalize(text)

    def read(piece: str) -> float | None:
        if not piece[0].isalnum() or not any(unit in piece.lower() for unit in _UNIT_WORDS):
            return None
        return parse_duration_hours(piece)

    return _longest_within(text, read, 12)
