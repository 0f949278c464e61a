"""A volunteer asks to correct an hour record (办法 Art 12–13): from 我的记录 (a 申请更正 button per
record), with 申请更正, or in plain words ("12月3日那次应该是3小时"). The dialog asks what is missing —
which record, the new hours (or 作废), why — and sends the request to the coordinators of the record's
organization; the volunteer is told their decision (handlers/corrections_review.py)."""

from __future__ import annotations

import re

from common.i18n import Text, _, join
from common.lang import to_simplified
from common.text import normalize_width
from common.timeparse import find_day, find_duration_hours, parse_day
from handlers.corrections_common import (
    ERRORS,
    REASON_PROMPT,
    WORDS,
    ChangeDraft,
    choose,
    hours_choices,
    hours_prompt,
    parse_new_hours,
    parse_reason,
    record_text,
    refusal,
    show_hours,
    store_hours,
    words,
)
from handlers.flows import Again, Field, Flow
from handlers.messages import Choice
from handlers.payloads import InvalidPayload, Payload, parse_int, payload
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput
from services.corrections import RecordLine, check_hours, record_line, record_lines, request_correction
from services.hours import HoursError

router = FeatureRouter("corrections")

_PLAIN = re.compile(WORDS["plain_pattern"], re.IGNORECASE)
LIST_SIZE = 8


@payload("correction")
class CorrectRecord(Payload):  # 申请更正 on one record of 我的记录
    record_id: int


def asks_correction(text: str) -> bool:
    """Plain words that ask to correct a record ("12月3日那次应该是3小时", "时长记错了")."""
    return bool(_PLAIN.search(to_simplified(normalize_width(text)).lower()))


@router.command("records", words=words("records"))
async def my_records(turn: Turn, _arg: str) -> None:
    lines = await record_lines(turn.session, person_id=turn.person.id, limit=LIST_SIZE)
    if not lines:
        turn.say(_("还没有计入时长的服务记录。"))
        return
    rows: list[Text] = [_("你最近的服务记录（有误可以申请更正）：")]
    rows += [_("{n}) {record}", n=i, record=record_text(line)) for i, line in enumerate(lines, 1)]
    turn.say(join(rows), [turn.choice(_("申请更正 {n}", n=i), CorrectRecord(line.record.id).pack())
                          for i, line in enumerate(lines, 1) if line.record.id is not None and not line.pending])


def _options(turn: Turn, lines: list[RecordLine]) -> list[tuple[int, str]]:
    return [(line.record.id, turn.text(record_text(line))) for line in lines if line.record.id is not None]


async def parse_record(turn: Turn, text: str, draft: ChangeDraft) -> int:
    """A listed record (its button or number), or a day typed ("12月3日", "上周六") naming one."""
    record_id = parse_int(text)
    if record_id is not None and any(record_id == listed for listed, _label in draft.options):
        line = await record_line(turn.session, record_id=record_id)
        if line is None or line.record.person_id != turn.person.id:
            raise InvalidInput("record")
        choose(turn, draft, line)
        return record_id
    day = parse_day(normalize_width(text).strip(), today=turn.today, past=True)
    if day is None:
        raise InvalidInput("record")
    lines = await record_lines(turn.session, person_id=turn.person.id, served_on=day)
    if not lines:
        raise InvalidInput("no_record_that_day")
    if len(lines) > 1:  # that day's records to choose from
        draft.options = _options(turn, lines)
        raise Again
    choose(turn, draft, lines[0])
    assert draft.record_id is not None
    return draft.record_id


def _record_choices(_turn: Turn, draft: ChangeDraft) -> list[Choice]:
    return [Choice(label=label[:40], value=f"a:{record_id}") for record_id, label in draft.options]


async def submit(turn: Turn, draft: ChangeDraft) -> None:
    assert draft.record_id is not None and draft.reason is not None
    try:
        await request_correction(turn.session, record_id=draft.record_id, person_id=turn.person.id,
                                 hours=None if draft.void else draft.hours, reason=draft.reason, now=turn.now)
    except HoursError as error:
        turn.say(refusal(error))
        return
    turn.say(_("更正申请已提交，协调员审核后会通知你。"), [turn.choice(_("我的记录"), "records")])


ASK = Flow("corr", ChangeDraft, [
    Field("record_id", _("要更正哪一条记录？请选择，或回复日期（如 12月3日）："), parse_record,
          choices=_record_choices, when=lambda d: d.record_id is None),
    Field("hours", hours_prompt, parse_new_hours, label=_("更正为"), show=show_hours, store=store_hours,
          choices=hours_choices),
    Field("reason", REASON_PROMPT, parse_reason, label=_("原因")),
], done=submit, title=lambda _turn, d: _("请确认更正申请：\n记录：{record}", record=d.label),
    confirm_label=_("提交申请"), errors={
    **ERRORS,
    "record": _("请选择一条记录，或回复那次服务的日期（如 12月3日）。"),
    "no_record_that_day": _("那天没有你计入时长的记录。请选择一条记录，或换一个日期。"),
})
ASK.register(router)


def _plain_hours(text: str) -> float | None:
    found = find_duration_hours(text)
    hours = found[0] if found else None
    try:
        check_hours(hours)
    except HoursError:
        return None
    return hours


def _refused(turn: Turn, line: RecordLine | None) -> bool:
    """Say why this record cannot be asked about (not counted, someone else's, a request already waiting)."""
    reason = ("not_counted" if line is None else "not_yours" if line.record.person_id != turn.person.id
              else "already_pending" if line.pending else None)
    if reason is not None:
        turn.say(refusal(HoursError(reason)))
    return reason is not None


@router.command("correction", "correct", words=words("correction"))
async def start(turn: Turn, arg: str) -> None:
    """申请更正 alone, a record's button (``correction:<record id>``), or plain words naming a day and hours."""
    try:
        ref = CorrectRecord.from_arg(arg.strip().lstrip("#")) if arg else None
    except InvalidPayload:
        ref = None
    draft = ChangeDraft()
    mine = turn.person.id
    if ref is not None:
        line = await record_line(turn.session, record_id=ref.record_id)
        if _refused(turn, line):
            return
        assert line is not None
        choose(turn, draft, line)
    elif arg:
        found = find_day(arg, today=turn.today, past=True)
        lines = await record_lines(turn.session, person_id=mine, served_on=found[0] if found else None, limit=LIST_SIZE)
        if found and not lines:
            turn.say(_("{day} 没有你计入时长的记录。", day=found[0].isoformat()))
            lines = await record_lines(turn.session, person_id=mine, limit=LIST_SIZE)
        if found and len(lines) == 1:
            if _refused(turn, lines[0]):
                return
            choose(turn, draft, lines[0])
        else:
            draft.options = _options(turn, lines)
        hours = _plain_hours(arg)
        if hours is not None and (draft.record_id is None or abs(hours - draft.current) > 1e-9):
            draft.hours = hours
    else:
        draft.options = _options(turn, await record_lines(turn.session, person_id=mine, limit=LIST_SIZE))
    if draft.record_id is None and not draft.options:
        turn.say(_("还没有计入时长的服务记录。"))
        return
    # hours given in the words: straight to the reason (the hours stay editable on the summary)
    await ASK.start(turn, draft, at="reason" if draft.record_id is not None and draft.hours is not None else None)
