"""待审核时长: coordinators approve or reject the hours volunteers reported themselves (pairing visits,
requests confirmed by their resident); the volunteer is told the decision."""

from __future__ import annotations

from common.i18n import Text, _, join
from handlers.activity_words import words
from handlers.messages import Choice
from handlers.payloads import Payload, payload
from handlers.permissions import ORG_DENIED
from handlers.turn import FeatureRouter, Role, Turn
from models import HourRecord, Person
from services.hours import HoursError
from services.hours_review import pending_hours, review_hours, reviewable_record

router = FeatureRouter("hours_review")


@payload("hrsv")
class ShowPendingHours(Payload):
    record_id: int


@payload("hrsok")
class ApproveHours(Payload):
    record_id: int


@payload("hrsno")
class RejectHours(Payload):
    record_id: int


def _line(turn: Turn, record: HourRecord, name: str) -> Text:
    return _("#{id} {name} {date} {hours} 小时：{note}", id=record.id, name=name, date=record.served_on.isoformat(),
             hours=f"{record.hours:g}", note=record.note or "-")


@router.command("hrsq", words=words("hours", "hrsq"), requires=Role.COORDINATOR)
async def pending_list(turn: Turn, _arg: str) -> None:
    pending = await pending_hours(turn.session, reviewer_id=turn.person.id, admin=await turn.admin())
    if not pending:
        turn.say(_("没有待审核的志愿时长。"))
        return
    rows: list[Text] = [_("待审核的志愿时长（志愿者自己登记的，审核通过后才计入）：")]
    rows += [_line(turn, p.record, p.name) for p in pending]
    turn.say(join(rows), [Choice(label=f"#{p.record.id} {p.name}"[:30], value=ShowPendingHours(p.record.id).pack())
                          for p in pending if p.record.id is not None])


@router.command("hrsv", payload=ShowPendingHours, requires=Role.COORDINATOR)
async def show_pending(turn: Turn, ref: ShowPendingHours) -> None:
    try:
        record = await reviewable_record(turn.session, record_id=ref.record_id, reviewer_id=turn.person.id,
                                         admin=await turn.admin())
    except HoursError as error:
        _refuse(turn, error)
        return
    person = await turn.session.get(Person, record.person_id)
    name = (person.name if person else None) or "?"
    if record.approved or record.reviewed_at is not None:
        turn.say(_("这条时长已经审核过了。"))
        return
    turn.say(_line(turn, record, name), [
        turn.choice(_("通过"), ApproveHours(ref.record_id).pack()),
        turn.choice(_("驳回"), RejectHours(ref.record_id).pack()),
        turn.choice(_("返回列表"), "hrsq"),
    ])


def _refuse(turn: Turn, error: HoursError) -> None:
    if error.reason == "not_manager":
        turn.say(ORG_DENIED)
    elif error.reason == "already_reviewed":
        turn.say(_("这条时长已经审核过了。"))
    else:
        turn.say(_("找不到这条时长记录。"))


async def _decide(turn: Turn, record_id: int, *, approve: bool) -> None:
    try:
        record = await review_hours(turn.session, record_id=record_id, reviewer_id=turn.person.id,
                                    admin=await turn.admin(), approve=approve, now=turn.now)
    except HoursError as error:
        _refuse(turn, error)
        return
    hours = f"{record.hours:g}"
    turn.say(_("已通过 #{id}（{hours} 小时），已通知志愿者。", id=record.id, hours=hours) if approve
             else _("已驳回 #{id}（{hours} 小时），已通知志愿者。", id=record.id, hours=hours),
             [turn.choice(_("继续审核"), "hrsq")])


@router.command("hrsok", payload=ApproveHours, requires=Role.COORDINATOR)
async def approve(turn: Turn, ref: ApproveHours) -> None:
    await _decide(turn, ref.record_id, approve=True)


@router.command("hrsno", payload=RejectHours, requires=Role.COORDINATOR)
async def reject(turn: Turn, ref: RejectHours) -> None:
    await _decide(turn, ref.record_id, approve=False)
