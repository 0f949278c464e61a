"""The parts ``common/timeparse.py`` is built from: its word lists, Chinese numbers, clock times with
上午/下午, and solar/lunar day resolution (lunar-python)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from lunar_python import Lunar, Solar

from common.resources import load_json
from common.text import cn_number, normalize_width

__all__ = ["NUM", "WORDS", "Clock", "alternation", "cn_int", "next_lunar", "normalize", "read_clock",
           "resolve_end", "resolve_month_day", "resolve_solar", "strip_trailing"]

WORDS = load_json("timewords.json")

# a day/hour/minute number: 20, 二十, 廿三, 两, 零五
NUM = r"(?:\d{1,2}|[零〇一二两三四五六七八九十廿卅]{1,3})"

_ZERO_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def alternation(words: Iterable[str]) -> str:
    """A regex group matching any of ``words``, the longest first (大后天 before 后天)."""
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + ")"


def cn_int(token: str | None, *, digits: bool = False) -> int | None:
    """'23', '二十三', '廿三', '两', '零五' → int; ``digits=True`` reads a year digit by digit (二〇二七)."""
    if not token:
        return None
    if token.isascii() and token.isdigit():
        return int(token)
    if digits:
        values = [_ZERO_DIGIT.get(ch) for ch in token]
        return None if None in values else int("".join(str(v) for v in values))
    if len(token) == 2 and token[0] in "零〇" and token[1] in _ZERO_DIGIT:
        return _ZERO_DIGIT[token[1]]
    return cn_number(token.replace("廿", "二十").replace("卅", "三十"))


def normalize(text: str) -> str:
    """Full-width to ASCII, one space for any run of blanks, no blanks at the ends."""
    text = normalize_width(text).replace("：", ":").lower()
    return re.sub(r"\s+", " ", text).strip()


_TRAILING = re.compile("(?:" + alternation(WORDS["trailing"]) + r"|\s)+$")


def strip_trailing(text: str) -> str:
    """Drop words that say nothing about the time at the end (开始, 左右, punctuation)."""
    return _TRAILING.sub("", text)


@dataclass(frozen=True, slots=True)
class Clock:
    """A time of day read from text: minutes since the day's midnight (1440+ is after midnight)."""

    minutes: int
    period: str | None  # the 上午/下午… kind written (or implied by 今晚), None for a bare hour
    ambiguous: bool  # a bare 1–11 o'clock: could be morning or afternoon
    hour: int  # as written
    minute: int
    fixed: bool = False  # a 24-hour clock reading (14:30, 09:00, 0点, 18点)
    colon: bool = False  # written as a clock face (9:00), not with 点


_PERIOD = "(?P<p>" + alternation(WORDS["periods"]) + ")? ?"
_HOUR_MARK = alternation(WORDS["hour_marks"])
_QUARTER = alternation(WORDS["quarters"])
_CLOCK = re.compile(
    _PERIOD + r"(?:(?P<hh>\d{1,2}):(?P<mm>\d{2})|(?P<h>" + NUM + ")" + _HOUR_MARK
    + "(?:(?P<half>" + WORDS["half"] + ")|(?P<q>" + _QUARTER + ")|(?P<mi>" + NUM + ")(?:"
    + alternation(WORDS["minute_marks"]) + ")?|" + alternation(WORDS["sharp"]) + ")?"
    + "|(?P<bare>" + NUM + r")(?= ?(?:" + alternation(WORDS["range_separators"]) + "|"
    + alternation(WORDS["suffix_periods"]) + ")))(?: ?(?P<suffix>" + alternation(WORDS["suffix_periods"]) + "))?")


def _with_period(hour: int, period: str) -> int | None:
    """The hour of the day (24+ = after midnight) that ``hour`` 点 means in ``period``; None if it can't."""
    if period == "morning":
        return hour if hour <= 12 else None
    if period == "noon":
        return hour + 12 if 1 <= hour <= 3 else hour if hour in (11, 12, 13, 14) else None
    if period == "afternoon":
        return hour + 12 if 1 <= hour <= 11 else hour if 12 <= hour <= 23 else None
    if period == "evening":
        if 5 <= hour <= 11:
            return hour + 12
        return 24 if hour in (0, 12) else hour if 17 <= hour <= 23 else hour + 24 if hour <= 4 else None
    if period == "dawn":
        return 0 if hour == 12 else hour if hour <= 6 else None
    if period == "midnight":
        return 24 if hour in (0, 12) else hour + 24 if hour <= 5 else None
    return None


def read_clock(text: str, pos: int, hint: str | None, day_hours: range) -> tuple[Clock, int] | None:
    """The clock time at ``pos`` and where it ends; ``hint`` is a period from the date (今晚)."""
    match = _CLOCK.match(text, pos)
    if not match:
        return None
    if match["p"] and match["suffix"]:
        return None  # 下午3pm
    period = WORDS["periods"][match["p"]] if match["p"] else (
        WORDS["suffix_periods"][match["suffix"]] if match["suffix"] else hint)
    if match["hh"] is not None:
        hour, minute = int(match["hh"]), int(match["mm"])
        fixed = len(match["hh"]) == 2 or hour == 0 or hour >= 13
    else:
        hour = cn_int(match["h"] or match["bare"])
        if match["half"]:
            minute = 30
        elif match["q"]:
            minute = WORDS["quarters"][match["q"]]
        else:
            minute = cn_int(match["mi"]) if match["mi"] else 0
        if hour is None or minute is None:
            return None
        fixed = hour == 0 or hour >= 13
    if not 0 <= minute <= 59 or hour > 23:
        return None
    ambiguous = False
    if period is not None:
        value = _with_period(hour, period)
        if value is None:
            return None
    elif fixed or hour == 12:
        value = hour
    else:
        value = hour if hour in day_hours else hour + 12
        # 九点 could be 21:00; a clock face (9:00) is read as written unless it is out of hours (3:00)
        ambiguous = match["hh"] is None or value != hour
    clock = Clock(value * 60 + minute, period, ambiguous, hour, minute, fixed, match["hh"] is not None)
    return clock, match.end()


def resolve_end(start: Clock, end: Clock) -> Clock | None:
    """The end of a range after ``start``: 9点到11点半, 下午2点-4点 (4 reads 下午 from the start),
    晚上10点到凌晨2点 (past midnight), 5点 after 14:00 (17:00). None when no reading comes after the start."""
    if end.period is not None:
        minutes = end.minutes
        if minutes <= start.minutes:
            if end.period not in ("dawn", "midnight", "evening"):
                return None
            minutes += 1440
        return replace(end, minutes=minutes, ambiguous=False)
    candidates: list[int] = []
    if end.fixed or (end.colon and start.period is None and not start.ambiguous):
        candidates.append(end.hour)  # after a known start (14:00, or the stored start), 8:00 means 8:00
    else:
        if start.period is not None and (inherited := _with_period(end.hour, start.period)) is not None:
            candidates.append(inherited)
        candidates += [end.hour, end.hour + 12] if end.hour < 12 else [end.hour]
    for hour in candidates:
        minutes = hour * 60 + end.minute
        if start.minutes < minutes < start.minutes + 1440:
            return replace(end, minutes=minutes, ambiguous=False, period=start.period)
    return None


def _valid_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def resolve_month_day(day: int, today: date, past: bool) -> date | None:
    """20号 alone: the 20th of this month if still to come, else of the next month (``past``: the last)."""
    year, month = today.year, today.month
    for _step in range(3):
        found = _valid_date(year, month, day)
        if found and (found <= today if past else found >= today):
            return found
        shift = month - 1 + (-1 if past else 1)
        year, month = year + shift // 12, shift % 12 + 1
    return None


def resolve_solar(year: int | None, month: int, day: int, today: date, past: bool) -> date | None:
    """A Gregorian month/day; without a year the next one on or after ``today`` (``past``: on or before)."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if year is not None:
        return _valid_date(year, month, day)
    years = range(today.year, today.year - 9, -1) if past else range(today.year, today.year + 9)
    for candidate in years:
        found = _valid_date(candidate, month, day)
        if found and (found <= today if past else found >= today):
            return found
    return None


def _lunar_to_solar(year: int, month: int, day: int, leap: bool) -> date | None:
    try:
        lunar = Lunar.fromYmd(year, -month if leap else month, day)
        solar = lunar.getSolar()
    except Exception:  # lunar-python raises plain Exceptions for a 30th in a 29-day month, a missing leap month
        return None
    back = Solar.fromYmd(solar.getYear(), solar.getMonth(), solar.getDay()).getLunar()
    if (back.getMonth(), back.getDay()) != ((-month if leap else month), day):
        return None
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def next_lunar(year: int | None, month: int, day: int, *, leap: bool, today: date, past: bool) -> date | None:
    """The Gregorian date of lunar ``month``/``day``: in lunar ``year`` if given, else the next one on or
    after ``today`` (``past``: the last one on or before). A 30th in a month of 29 days is no date."""
    if not (1 <= month <= 12 and 1 <= day <= 30):
        return None
    if year is not None:
        return _lunar_to_solar(year, month, day, leap)
    this_year = Solar.fromYmd(today.year, today.month, today.day).getLunar().getYear()
    span = 20 if leap else 3
    years = range(this_year, this_year - span, -1) if past else range(this_year - 1, this_year + span)
    for candidate in years:
        found = _lunar_to_solar(candidate, month, day, leap)
        if found is None and (month, day, leap) == (12, 30, False):
            found = _lunar_to_solar(candidate, 12, 29, False)  # 腊月三十 is 除夕, the 29th in a short year
        if found and (found <= today if past else found >= today):
            return found
    return None
