"""Hours questions that name what they ask: a star level, a period, an activity.

"我还差多少小时到三星", "我今年服务了多久", "上个月做了几个小时", "重阳节活动给我记了几个小时": the
answer's first lines give that figure; the hours summary (``handlers.hours``) follows.
"""

from __future__ import annotations

import re
from datetime import date

from common.i18n import Text, _
from common.lang import to_simplified
from common.text import cn_number
from common.timeparse import parse_period
from handlers.turn import Turn
from handlers.words import load_words
from services.hours import STAR_THRESHOLDS, hours_for_activity, hours_in_period

__all__ = ["exact_answers", "find_period", "find_star", "period_words"]

_WORDS = load_words("hours_question_words")
STAR = re.compile(_WORDS["star"])
PERIOD = re.compile(_WORDS["period"])
ACTIVITY = re.compile(_WORDS["activity"])
ACTIVITY_STOP = re.compile(_WORDS["activity_stop"])


def _fold(text: str) -> str:
    return to_simplified(text).lower().strip()


def find_star(text: str) -> int | None:
    match = STAR.search(_fold(text))
    if not match:
        return None
    token = next(group for group in match.groups() if group)
    level = _WORDS["star_numbers"].get(token) or cn_number(token)
    return level if level and 1 <= level <= len(STAR_THRESHOLDS) else None


def find_period(text: str, *, today: date) -> tuple[str, date, date] | None:
    """The period a question names, as typed, with its first and last day (a half year too)."""
    match = PERIOD.search(_fold(text))
    if not match:
        return None
    said = match.group(0)
    if said in _WORDS["half_years"]:
        first_month, first_day, last_month, last_day = _WORDS["half_years"][said]
        return said, date(today.year, first_month, first_day), min(date(today.year, last_month, last_day), today)
    span = parse_period(_WORDS["period_aliases"].get(said, said).replace(" ", ""), today=today, past=True)
    if span is None:
        return None
    first, last = span
    return said, first, min(last, today)


def period_words(text: str) -> str:
    """The period a message names, in the words of ``common.timeparse`` ("今年", "上个月"), or ""."""
    match = PERIOD.search(_fold(text))
    if not match:
        return ""
    return _WORDS["period_aliases"].get(match.group(0), match.group(0)).replace(" ", "")


def find_activity(text: str) -> str | None:
    match = ACTIVITY.search(_fold(text))
    if not match:
        return None
    name = ACTIVITY_STOP.sub("", next(group for group in match.groups() if group)).strip()
    return name if len(name) >= 2 else None


async def exact_answers(turn: Turn, text: str, total: float) -> list[Text]:
    """The figures the question asks for (empty when it names nothing)."""
    rows: list[Text] = []
    level = find_star(text)
    if level is not None:
        target = STAR_THRESHOLDS[level - 1]
        if total >= target:
            rows.append(_("你已达到{stars}星（{target} 小时），累计 {hours} 小时。", stars=level, target=target,
                          hours=f"{total:g}"))
        else:
            rows.append(_("距离{stars}星（{target} 小时）还差 {hours} 小时。", stars=level, target=target,
                          hours=f"{round(target - total, 2):g}"))
    name = None if level is not None else find_activity(text)
    period = None if name is not None else find_period(text, today=turn.today)
    if period is not None:
        said, first, last = period
        assert turn.person.id is not None
        hours = await hours_in_period(turn.reads, person_id=turn.person.id, first=first, last=last)
        rows.append(_("{period}（{first} 至 {last}）你服务了 {hours} 小时。", period=said,
                      first=f"{first:%Y-%m-%d}", last=f"{last:%Y-%m-%d}", hours=f"{hours:g}"))
    if name is not None:
        assert turn.person.id is not None
        found = await hours_for_activity(turn.reads, person_id=turn.person.id, title_part=name)
        if not found:
            rows.append(_("没有找到「{name}」的时长记录。", name=name))
        for title, hours, served_on in found:
            rows.append(_("「{title}」（{date}）记了 {hours} 小时。", title=title, date=f"{served_on:%Y-%m-%d}",
                          hours=f"{hours:g}"))
    return rows
