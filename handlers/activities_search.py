"""Finding activities by category, date words and area: typed ("周末的助老活动", "12月的活动", "搜索活动 助老",
"花家地的活动") or by buttons (a category, this week, the weekend). The filtering is one SQL query
(services.activities.upcoming_lines with an ActivityFilter), paginated like the plain list.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from common.i18n import Text, _, join, month_day
from common.lang import to_simplified
from common.taxonomy import CATEGORIES
from common.timeparse import find_period, parse_period
from handlers.activities_common import category_name, line, router
from handlers.activity_payloads import ActivityPage, FindActivities, FindCategory, OpenActivity
from handlers.activity_words import words
from handlers.messages import Choice
from handlers.turn import Turn
from handlers.words import load_words
from services import activities as service

_DATA = load_words("activity_search")
CATEGORY_WORDS: list[tuple[str, str]] = sorted(
    ((word, code) for code, items in _DATA["categories"].items() for word in items), key=lambda p: -len(p[0]))
FILLERS: list[str] = sorted(_DATA["fillers"], key=len, reverse=True)
PREFIXES: list[str] = sorted(_DATA["prefixes"], key=len, reverse=True)
MAX_AREA_BYTES = 15  # what fits in a button's 64 bytes beside the other filters
MAX_SEARCH_CHARS = 40


@dataclass(frozen=True, slots=True)
class Query:
    category: str = ""
    period: str = ""  # "week", "weekend" or "YYYYMMDD-YYYYMMDD"
    area: str = ""

    def __bool__(self) -> bool:
        return bool(self.category or self.period or self.area)


# ---- reading a query -------------------------------------------------------------------------------
def _fit_area(area: str) -> str:
    """The longest prefix of ``area`` whose UTF-8 fits in a button (a prefix matches at least as much)."""
    while len(area.encode()) > MAX_AREA_BYTES:
        area = area[:-1]
    return area


async def read_query(turn: Turn, text: str, *, explicit: bool) -> Query:
    """What a message asks for. Words left over after the period, the category and filler words are an
    area when some organization or place contains them (or when the user asked to search)."""
    rest = to_simplified(text).lower().strip()[:MAX_SEARCH_CHARS]
    for prefix in PREFIXES:
        if rest.startswith(prefix):
            rest = rest[len(prefix):]
            break
    rest = " ".join(rest.split())  # as timeparse normalizes it, so its positions are positions in ``rest``
    period = ""
    found = find_period(rest, today=turn.today)
    if found is not None:
        (first, last), start, end = found
        period = f"{first:%Y%m%d}-{last:%Y%m%d}"
        rest = f"{rest[:start]} {rest[end:]}"
    category = ""
    for word, code in CATEGORY_WORDS:
        if word in rest:
            category = code
            rest = rest.replace(word, " ", 1)
            break
    for filler in FILLERS:
        rest = rest.replace(filler, " ")
    leftover = max(rest.split(), key=len, default="")
    area = ""
    if len(leftover) >= 2 and (explicit or await service.area_known(turn.reads, area=leftover)):
        area = _fit_area(leftover)
    return Query(category=category, period=period, area=area)


def period_range(period: str, today: date) -> tuple[date, date] | None:
    if period in _DATA["buttons"]:
        return parse_period(_DATA["buttons"][period], today=today)
    first, _sep, last = period.partition("-")
    try:
        return datetime.strptime(first, "%Y%m%d").date(), datetime.strptime(last, "%Y%m%d").date()
    except ValueError:
        return None


def pack_area(area: str) -> str:
    return base64.urlsafe_b64encode(area.encode()).decode().rstrip("=")


def unpack_area(packed: str) -> str:
    try:
        return base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode()[:MAX_AREA_BYTES]
    except (binascii.Error, UnicodeDecodeError):
        return ""


# ---- showing results ---------------------------------------------------------------------------------
def _described(turn: Turn, query: Query, window: tuple[date, date] | None) -> Text:
    parts: list[Text] = []
    if query.category:
        parts.append(category_name(turn, query.category))
    if window is not None:
        first, last = window
        parts.append(month_day(first) if first == last else _("{start}–{end}", start=month_day(first),
                                                                 end=month_day(last)))
    if query.area:
        parts.append(_("「{area}」", area=query.area))
    return join(parts, sep=turn.text(_("，")))


# the filter buttons' labels and values: the values packed once, not under every list of activities
_FILTERS: tuple[tuple[Text, str], ...] = (
    (_("按类别"), FindCategory().pack()),
    (_("本周"), FindActivities("", "week", "", 1).pack()),
    (_("周末"), FindActivities("", "weekend", "", 1).pack()),
)


def filter_choices(turn: Turn) -> list[Choice]:
    """The filter buttons under a list of activities."""
    return [turn.choice(label, value) for label, value in _FILTERS]


async def show_results(turn: Turn, query: Query, page: int) -> None:
    window = period_range(query.period, turn.today) if query.period else None
    filters = service.ActivityFilter(
        category=query.category or None, area=query.area or None,
        window_start=turn.to_utc(datetime.combine(window[0], time.min)) if window else None,
        window_end=turn.to_utc(datetime.combine(window[1] + timedelta(days=1), time.min)) if window else None)
    size = turn.options.page_size
    page = max(page, 1)
    rows, total = await service.upcoming_lines(turn.reads, now=turn.now, offset=(page - 1) * size, limit=size,
                                               filters=filters)
    described = _described(turn, query, window)
    if total == 0:
        turn.say(_("没有找到符合条件的活动（{filters}）。", filters=described),
                 [turn.choice(_("全部活动"), ActivityPage(1).pack()), turn.choice(_("按类别"), FindCategory().pack())])
        return
    pages = math.ceil(total / size)
    if not rows:
        page = pages
        rows, _total = await service.upcoming_lines(turn.reads, now=turn.now, offset=(page - 1) * size,
                                                    limit=size, filters=filters)
    text = join([_("符合条件的活动（{filters}）：{total} 个，第 {page}/{pages} 页", filters=described, total=total,
                   page=page, pages=pages),
                 *(line(turn, i, a) for i, a in enumerate(rows, 1)), _("回复序号查看详情和报名。")])
    choices = [Choice(label=a.title[:30], value=OpenActivity(a.id).pack()) for a in rows]
    area = pack_area(query.area)
    if page > 1:
        choices.append(turn.choice(_("上一页"), FindActivities(query.category, query.period, area, page - 1).pack()))
    if page < pages:
        choices.append(turn.choice(_("下一页"), FindActivities(query.category, query.period, area, page + 1).pack()))
    choices.append(turn.choice(_("全部活动"), ActivityPage(1).pack()))
    turn.say(text, choices)


# ---- commands --------------------------------------------------------------------------------------
@router.command("find", payload=FindActivities)
async def find(turn: Turn, p: FindActivities) -> None:
    category = p.category if p.category in CATEGORIES else ""
    await show_results(turn, Query(category=category, period=p.period, area=unpack_area(p.area)), p.page)


@router.command("findcat", payload=FindCategory)
async def find_category(turn: Turn, _p: FindCategory) -> None:
    turn.say(_("想看哪一类活动？"),
             [Choice(label=category_name(turn, code), value=FindActivities(code, "", "", 1).pack())
              for code in CATEGORIES if code != "other"])


@router.command("search", words=words("activities", "search"), takes_arg=True)
async def search(turn: Turn, arg: str) -> None:
    """搜索活动 [words]: the words read as a query; alone, the filter buttons."""
    query = await read_query(turn, arg, explicit=True) if arg else Query()
    if not query:
        turn.say(_("可以按类别、日期或地区找活动，比如「周末的助老活动」「12月的活动」「花家地的活动」。"),
                 filter_choices(turn))
        return
    await show_results(turn, query, 1)
