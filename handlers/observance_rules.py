"""Observance date rules as people type them (3月5日, 农历九月初九, 5月第三个周日) and as they are shown."""

from __future__ import annotations

import re
from functools import cache

from common.i18n import N_, Msg, _
from common.text import WEEKDAYS, cn_number, normalize_width
from common.timeparse import parse_month_day
from handlers.reminder_words import words
from models.reminders import Observance
from services.calendar import Rule, RuleError

WEEKDAY_NAMES = (N_("周一"), N_("周二"), N_("周三"), N_("周四"), N_("周五"), N_("周六"), N_("周日"))


@cache
def _patterns() -> dict:
    """The rule words of handlers/data/reminder_words.json with their regexes compiled."""
    section = dict(words("observances")["rule"])
    for key in ("nth_weekday",):
        section[key] = re.compile(section[key])
    return section


def _number(token: str) -> int | None:
    """Lunar month names and "last" (week) from the data file; other numbers are digits or numerals."""
    token = token.strip()
    numbers = _patterns()["numbers"]
    if token in numbers:
        return int(numbers[token])
    return cn_number(token.removeprefix(_patterns()["day_prefix"]))  # 初九 → 9


def parse_rule(raw: str) -> Rule:
    """'3月5日' (solar), '农历九月初九' / '农历9月9日' / '腊月廿三' (lunar, common/timeparse), '5月第三个周日'
    (nth weekday)."""
    text = normalize_width(raw).replace(" ", "")
    patterns = _patterns()
    match = patterns["nth_weekday"].fullmatch(text)
    if match:
        month, nth = _number(match[1]), _number(match[2])
        day_name = patterns["weekday_aliases"].get(match[3], match[3])
        if month is None or nth is None:
            raise RuleError("bad month or week")
        return Rule("nth_weekday", month, weekday=WEEKDAYS.index(day_name), nth=nth)
    if (read := parse_month_day(text)) is not None:
        return Rule("lunar" if read.lunar else "solar", read.month, day=read.day)
    raise RuleError("unreadable")


def describe(observance: Observance) -> Msg:
    """农历9月9日 / 5月第3个周日 / 3月5日."""
    if observance.rule == "lunar":
        return _("农历{month}月{day}日", month=observance.month, day=observance.day)
    if observance.rule == "nth_weekday":
        weekday = WEEKDAY_NAMES[observance.weekday or 0]
        if observance.nth == -1:
            return _("{month}月最后一个{weekday}", month=observance.month, weekday=weekday)
        return _("{month}月第{nth}个{weekday}", month=observance.month, nth=observance.nth, weekday=weekday)
    return _("{month}月{day}日", month=observance.month, day=observance.day)
