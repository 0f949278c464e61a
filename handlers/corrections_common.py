"""What the volunteers' and the coordinators' correction dialogs share: reading new hours and a reason,
a record as one line, and the answer to each refusal of services.corrections."""

from __future__ import annotations

import re

from pydantic import BaseModel

from common.i18n import Text, _
from common.lang import to_simplified
from common.text import normalize_width
from common.timeparse import parse_duration_hours
from handlers.hours import day_limit_text
from handlers.messages import Choice
from handlers.permissions import ORG_DENIED
from handlers.turn import Turn
from handlers.validation import InvalidInput
from handlers.words import load_words
from models.corrections import REASON_MAX
from services.corrections import REASON_MIN, RecordLine, check_hours
from services.hours import DAY_LIMIT_HOURS, HoursError

WORDS = load_words("correction_words")
VOID_WORDS = frozenset(WORDS["void"])
_ZERO = re.compile(WORDS["zero_hours"], re.IGNORECASE)


def words(command: str) -> tuple[str, ...]:
    return tuple(WORDS[command])


class ChangeDraft(BaseModel):
    """The part of a correction both dialogs ask: which record, what it should count, and why."""

    record_id: int | None = None
    label: str = ""  # the chosen record as one line, in the language it was chosen in
    current: float = 0  # what it counts now
    options: list[tuple[int, str]] = []  # (record id, line) to choose from
    hours: float | None = None
    void: bool = False
    reason: str | None = None


def record_text(line: RecordLine, *, with_name: bool = False) -> Text:
    """「2026-02-28 敬老院探访 3 小时（已更正，原 2 小时）」, with the volunteer's name for coordinators."""
    what = line.title or line.record.note or _("志愿服务")
    day = line.record.served_on.isoformat()
    if with_name:
        text: Text = _("{date} {name} {what} {hours} 小时", date=day, name=line.name, what=what, hours=f"{line.hours:g}")
    else:
        text = _("{date} {what} {hours} 小时", date=day, what=what, hours=f"{line.hours:g}")
    if line.voided:
        text = _("{record}（已作废）", record=text)
    elif line.corrected:
        text = _("{record}（已更正，原 {old} 小时）", record=text, old=f"{line.record.hours:g}")
    if line.pending:
        text = _("{record}（更正审核中）", record=text)
    return text


def choose(turn: Turn, draft: ChangeDraft, line: RecordLine, *, with_name: bool = False) -> None:
    assert line.record.id is not None
    draft.record_id, draft.current = line.record.id, line.hours
    draft.label = turn.text(record_text(line, with_name=with_name))


def parse_new_hours(_turn: Turn, text: str, draft: ChangeDraft) -> tuple[float | None, bool]:
    """New hours (3, 2.5, 两个小时, 90分钟) or 作废: (hours, void)."""
    plain = to_simplified(normalize_width(text)).strip().lower()
    if plain in VOID_WORDS:
        return None, True
    if _ZERO.fullmatch(plain):
        raise InvalidInput("hours_zero")
    hours = parse_duration_hours(plain)
    if hours is None:
        raise InvalidInput("hours_format")
    try:
        check_hours(hours)
    except HoursError as error:
        raise InvalidInput("hours_range") from error
    if abs(hours - draft.current) < 1e-9:
        raise InvalidInput("hours_same")
    return round(hours, 2), False


def store_hours(draft: ChangeDraft, value: tuple[float | None, bool]) -> None:
    draft.hours, draft.void = value


def show_hours(_turn: Turn, draft: ChangeDraft) -> Text:
    return _("作废（不再计入时长）") if draft.void else _("{hours} 小时", hours=f"{draft.hours:g}")


def parse_reason(_turn: Turn, text: str) -> str:
    reason = " ".join(normalize_width(text).split())
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise InvalidInput("reason_length")
    return reason


def hours_prompt(_turn: Turn, draft: ChangeDraft) -> Text:
    return _("「{record}」\n应该是多少小时？回复如 3、2.5 或「两个半小时」；这条记录不该算的话回复「作废」。", record=draft.label)


def hours_choices(turn: Turn, draft: ChangeDraft) -> list[Choice]:
    """作废, and the hours already given in plain words (one press keeps them)."""
    given = [turn.choice(_("{hours} 小时", hours=f"{draft.hours:g}"), f"a:{draft.hours:g}")] if draft.hours else []
    return [*given, turn.choice(_("作废"), "a:void")]


REASON_PROMPT = _("请简单说明原因（{low}–{high} 字），如：签退时忘了扫码，实际服务到 12 点。", low=REASON_MIN,
                  high=REASON_MAX)

ERRORS: dict[str, Text] = {
    "hours_format": _("没看懂这个时长。请回复小时数，如 3、2.5 或「两个半小时」，或回复「作废」。"),
    "hours_zero": _("时长要大于 0。这条记录不该算的话，请回复「作废」。"),
    "hours_range": _("时长不能超过 {limit} 小时，请重新输入。", limit=f"{DAY_LIMIT_HOURS:g}"),
    "hours_same": _("这条记录现在就是这个时长，不用更正。请输入新的时长，或回复「作废」。"),
    "reason_length": _("原因请写 {low}–{high} 字。", low=REASON_MIN, high=REASON_MAX),
}


def refusal(error: HoursError) -> Text:
    """The answer to a refusal of services.corrections."""
    if error.reason == "day_limit":
        return day_limit_text(error)
    texts: dict[str, Text] = {
        "not_manager": ORG_DENIED,
        "not_yours": _("只能为自己的记录申请更正。"),
        "not_counted": _("这条记录还没有计入时长（待审核或未通过），不能更正。"),
        "voided": _("这条记录已经作废了。"),
        "same_hours": ERRORS["hours_same"],
        "bad_hours": ERRORS["hours_range"],
        "already_pending": _("这条记录已有一个更正申请在审核中，请等协调员处理。"),
        "already_decided": _("这个更正申请已经处理过了。"),
        "own_record": _("不能审批或更正自己的时长记录，请由其他协调员处理。"),
    }
    return texts.get(error.reason, _("找不到这条记录。"))
