"""Coordinators and corrections: 待审核更正 (approve, or reject with a reason) and 更正时长 (correct or
void a record of their organization themselves, with a reason: approved at once, decided by them)."""

from __future__ import annotations

from pydantic import BaseModel

from common.i18n import Text, _, join
from handlers.corrections_common import (
    ERRORS,
    REASON_PROMPT,
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
from handlers.flows import Field, Flow
from handlers.messages import Choice
from handlers.payloads import InvalidPayload, Payload, parse_int, payload
from handlers.permissions import ORG_DENIED
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput
from services.corrections import (
    PendingCorrection,
    correct_directly,
    decide_correction,
    manageable_record,
    pending_correction,
    pending_corrections,
    record_line,
    record_lines,
)
from services.hours import HoursError, recent_started_activities
from services.people import managed_organizations

router = FeatureRouter("corrections_review")


@payload("corrv")
class ShowCorrection(Payload):
    correction_id: int


@payload("corrok")
class ApproveCorrection(Payload):
    correction_id: int


@payload("corrno")
class RejectCorrection(Payload):
    correction_id: int


@payload("corrfix")
class FixRecord(Payload):  # 更正时长 on one record: "/corrfix 12"
    record_id: int


def _describe(item: PendingCorrection) -> Text:
    c = item.correction
    new: Text = _("{hours} 小时", hours=f"{c.hours:g}") if c.hours is not None else _("作废")
    return _("#{id} {name} {date}「{what}」{old} 小时 → {new}。原因：{reason}", id=c.id, name=item.name,
             date=item.served_on.isoformat(), what=item.what, old=f"{c.old_hours:g}", new=new, reason=c.reason)


@router.command("corrq", words=words("corrq"), requires=Role.COORDINATOR)
async def pending_list(turn: Turn, _arg: str) -> None:
    pending = await pending_corrections(turn.session, reviewer_id=turn.person.id, admin=await turn.admin())
    if not pending:
        turn.say(_("没有待审核的更正申请。"))
        return
    rows: list[Text] = [_("待审核的更正申请：")] + [_describe(item) for item in pending]
    turn.say(join(rows), [Choice(label=f"#{p.correction.id} {p.name}"[:30], value=ShowCorrection(p.correction.id).pack())
                          for p in pending if p.correction.id is not None])


def _decision_choices(turn: Turn, correction_id: int) -> list[Choice]:
    return [turn.choice(_("批准"), ApproveCorrection(correction_id).pack()),
            turn.choice(_("驳回"), RejectCorrection(correction_id).pack()),
            turn.choice(_("返回列表"), "corrq")]


async def _pending(turn: Turn, correction_id: int) -> PendingCorrection | None:
    """The pending correction this coordinator may decide, or None after saying why not."""
    try:
        item = await pending_correction(turn.session, correction_id=correction_id, reviewer_id=turn.person.id,
                                        admin=await turn.admin())
    except HoursError as error:
        turn.say(refusal(error))
        return None
    if item.correction.status != "pending":
        turn.say(refusal(HoursError("already_decided")))
        return None
    return item


@router.command("corrv", payload=ShowCorrection, requires=Role.COORDINATOR)
async def show(turn: Turn, ref: ShowCorrection) -> None:
    item = await _pending(turn, ref.correction_id)
    if item is not None:
        turn.say(_describe(item), _decision_choices(turn, ref.correction_id))


async def _decide(turn: Turn, correction_id: int, *, approve: bool, note: str = "") -> None:
    try:
        correction = await decide_correction(turn.session, correction_id=correction_id, decider_id=turn.person.id,
                                             admin=await turn.admin(), approve=approve, note=note, now=turn.now)
    except HoursError as error:
        turn.say(refusal(error))
        return
    turn.say(_("已批准更正 #{id}，已通知志愿者。", id=correction.id) if approve
             else _("已驳回更正 #{id}，已通知志愿者。", id=correction.id), [turn.choice(_("继续审核"), "corrq")])


@router.command("corrok", payload=ApproveCorrection, requires=Role.COORDINATOR)
async def approve(turn: Turn, ref: ApproveCorrection) -> None:
    await _decide(turn, ref.correction_id, approve=True)


class RejectDraft(BaseModel):
    correction_id: int = 0
    note: str | None = None


async def _reject(turn: Turn, draft: RejectDraft) -> None:
    assert draft.note is not None
    await _decide(turn, draft.correction_id, approve=False, note=draft.note)


REJECT = Flow("corrno", RejectDraft, [
    Field("note", _("请写下驳回的原因（会告诉志愿者）："), parse_reason),
], done=_reject, confirm=False, requires=Role.COORDINATOR, errors=ERRORS)
REJECT.register(router)


@router.command("corrno", payload=RejectCorrection, requires=Role.COORDINATOR)
async def reject(turn: Turn, ref: RejectCorrection) -> None:
    item = await _pending(turn, ref.correction_id)
    if item is not None:
        turn.say(_describe(item))
        await REJECT.start(turn, RejectDraft(correction_id=ref.correction_id))


# ---- 更正时长: activity → volunteer's record → new hours or 作废 → reason → confirm -------------------
class FixDraft(ChangeDraft):
    activity_id: int | None = None  # the activity chosen, or 0 for a volunteer's records found by name
    activities: list[tuple[int, str]] = []
    organization_ids: list[int] | None = None  # whose records may be listed (None: an admin's, all)


async def parse_activity(turn: Turn, text: str, draft: FixDraft) -> int:
    """A listed activity (its records to choose from), or a volunteer's name (their records here)."""
    activity_id = parse_int(text)
    if activity_id is not None and any(activity_id == listed for listed, _title in draft.activities):
        lines = await record_lines(turn.session, activity_id=activity_id, limit=30)
    else:
        name = " ".join(text.split())
        if not 1 < len(name) <= 64:
            raise InvalidInput("activity")
        activity_id = 0
        lines = await record_lines(turn.session, name=name, organization_ids=draft.organization_ids, limit=20)
    if not lines:
        raise InvalidInput("no_records")
    draft.options = [(line.record.id, turn.text(record_text(line, with_name=True)))
                     for line in lines if line.record.id is not None]
    return activity_id


async def parse_fix_record(turn: Turn, text: str, draft: FixDraft) -> int:
    record_id = parse_int(text)
    line = await record_line(turn.session, record_id=record_id) if record_id is not None else None
    if line is None or all(record_id != listed for listed, _label in draft.options):
        raise InvalidInput("record")
    choose(turn, draft, line, with_name=True)
    assert line.record.id is not None
    return line.record.id


def _choices(pairs: list[tuple[int, str]]) -> list[Choice]:
    return [Choice(label=label[:40], value=f"a:{item}") for item, label in pairs]


async def fix(turn: Turn, draft: FixDraft) -> None:
    assert draft.record_id is not None and draft.reason is not None
    try:
        await correct_directly(turn.session, record_id=draft.record_id, coordinator_id=turn.person.id,
                               admin=await turn.admin(), hours=None if draft.void else draft.hours,
                               reason=draft.reason, now=turn.now)
    except HoursError as error:
        turn.say(refusal(error))
        return
    turn.say(_("已作废这条记录，已通知志愿者。") if draft.void else
             _("已更正为 {hours} 小时，已通知志愿者。", hours=f"{draft.hours:g}"))


FIX = Flow("corrfix", FixDraft, [
    Field("activity_id", _("更正哪个活动的时长？也可以回复志愿者的姓名，列出他在本组织的记录。"), parse_activity, choices=lambda _t, d: _choices(d.activities),
          when=lambda d: d.record_id is None),
    Field("record_id", _("更正谁的记录？"), parse_fix_record, choices=lambda _t, d: _choices(d.options),
          when=lambda d: d.activity_id is not None),
    Field("hours", hours_prompt, parse_new_hours, label=_("更正为"), show=show_hours, store=store_hours,
          choices=hours_choices),
    Field("reason", REASON_PROMPT, parse_reason, label=_("原因")),
], done=fix, requires=Role.COORDINATOR, title=lambda _turn, d: _("请确认更正：\n记录：{record}", record=d.label),
    errors={**ERRORS, "activity": _("请选择一个活动，或回复志愿者的姓名。"), "record": _("请选择一条记录。"),
            "no_records": _("没有找到计入时长的记录，请换一个活动或姓名。")})
FIX.register(router)


@router.command("corrfix", words=words("corrfix"), requires=Role.COORDINATOR)
async def start_fix(turn: Turn, arg: str) -> None:
    admin = await turn.admin()
    if arg:
        try:
            ref = FixRecord.from_arg(arg.strip().lstrip("#"))
        except InvalidPayload:
            ref = None
        try:
            if ref is None:
                raise HoursError("not_found")
            line = await manageable_record(turn.session, record_id=ref.record_id, person_id=turn.person.id,
                                           admin=admin)
        except HoursError as error:
            turn.say(refusal(error))
            return
        draft = FixDraft()
        choose(turn, draft, line, with_name=True)
        await FIX.start(turn, draft)  # checked again when the correction is written
        return
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)
    if not orgs:
        turn.say(ORG_DENIED)
        return
    org_ids = [o.id for o in orgs if o.id is not None]
    activities = await recent_started_activities(turn.session, organization_ids=org_ids, now=turn.now, days=180,
                                                 limit=10)
    await FIX.start(turn, FixDraft(activities=[(a.id, f"{a.title} {turn.local(a.start_at):%m-%d}")
                                               for a in activities if a.id is not None],
                                   organization_ids=None if admin else org_ids))
