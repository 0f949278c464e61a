"""修改活动 / 取消活动: a coordinator of the activity's organization edits one field or cancels with a reason.

Both are declarative flows (handlers/flows.py). The time is read by the publish flow's own parsers, so
an edit understands exactly what publishing does. The service tells everyone signed up or waitlisted.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from common.i18n import Text, _
from handlers.activities_common import choose_activity, deny, managed_activity, router
from handlers.activities_publish import FLOW as PUBLISH_FLOW
from handlers.activities_publish import (
    confirm_start,
    parse_description,
    parse_end,
    parse_place,
    parse_start,
    parse_title,
    store_start,
)
from handlers.activity_payloads import CancelActivity, EditActivity, OpenActivity
from handlers.activity_words import words
from handlers.flows import Field, Flow
from handlers.messages import Choice
from handlers.turn import Role, Turn
from handlers.validation import InvalidInput, parse_positive_int
from models import Activity
from models.activity_changes import EDITABLE_FIELDS
from services import activities as activities_service
from services import activity_changes as service
from services.activities import ActivityError

FIELD_LABELS: dict[str, Text] = {
    "title": _("名称"),
    "time": _("时间"),
    "place": _("地点"),
    "capacity": _("名额"),
    "description": _("介绍"),
}
CHANGE_ERRORS: dict[str, Text] = {
    "not_found": _("找不到这个活动。"),
    "cancelled": _("这个活动已经取消了。"),
    "over": _("这个活动已经结束，不能再修改或取消。"),
    "end_before_start": _("结束时间要晚于开始时间。"),
    "start_past": _("开始时间已经过去了。"),
    "capacity_below_signups": _("已报名的人数超过了新的名额，没有修改。要减少名额，请先和多出的志愿者沟通。"),
}


class EditDraft(BaseModel):
    activity_id: int = 0
    activity_title: str = ""
    old: dict[str, str] = {}  # field → its value when the dialog began, as shown
    confirmed: int = 0  # people signed up when the dialog began: the lowest capacity allowed
    field: str | None = None
    title: str | None = None
    start: datetime | None = None  # naive local time, as the publish flow reads it
    end: datetime | None = None
    start_guess: bool = False  # the start's hour was guessed (no 上午/下午): said when it is read back
    place: str | None = None
    capacity: int | None = None
    description: str | None = None


class CancelDraft(BaseModel):
    activity_id: int = 0
    activity_title: str = ""
    when: str = ""
    signed: int = 0
    waiting: int = 0
    reason: str | None = None


# ---- editing -------------------------------------------------------------------------------------
def parse_field(_turn: Turn, text: str) -> str:
    if text not in EDITABLE_FIELDS:
        raise InvalidInput("field")
    return text


def parse_capacity(_turn: Turn, text: str, draft: EditDraft) -> int:
    capacity = parse_positive_int(text, maximum=1000)  # InvalidInput("number_format")
    if capacity < draft.confirmed:
        raise InvalidInput("capacity_below")
    return capacity


def field_choices(turn: Turn, _draft: EditDraft) -> list[Choice]:
    return [turn.choice(FIELD_LABELS[name], f"a:{name}") for name in EDITABLE_FIELDS]


def show_field(turn: Turn, draft: EditDraft) -> Text | None:
    return turn.text(FIELD_LABELS[draft.field]) if draft.field else None


def _change(turn: Turn, draft: EditDraft, name: str, new: str | None) -> Text | None:
    if new is None:
        return None
    return _("{old} → {new}", old=draft.old.get(name) or turn.text(_("（无）")), new=new or turn.text(_("（无）")))


def show_time(turn: Turn, draft: EditDraft) -> Text | None:
    if draft.start is None or draft.end is None:
        return None
    return _change(turn, draft, "time", turn.fmt_span(turn.to_utc(draft.start), turn.to_utc(draft.end)))


def _shows(name: str):  # noqa: ANN202 - a show function for one plain field
    def show(turn: Turn, draft: EditDraft) -> Text | None:
        value = getattr(draft, name)
        return _change(turn, draft, name, None if value is None else str(value))

    return show


def _editing(name: str):  # noqa: ANN202 - a ``when`` for the fields of one choice
    return lambda draft: draft.field == name


def edit_title(turn: Turn, draft: EditDraft) -> Text:
    return _("修改「{title}」。要改哪一项？", title=draft.activity_title)


async def save_edit(turn: Turn, draft: EditDraft) -> None:
    activity = await managed_activity(turn, draft.activity_id)
    if activity is None or draft.field is None:
        return
    value: service.EditValue
    if draft.field == "time":
        assert draft.start is not None and draft.end is not None
        value = service.TimeSpan(turn.to_utc(draft.start), turn.to_utc(draft.end))
    else:
        value = getattr(draft, draft.field)
        value = "" if value is None else value
    try:
        result = await service.edit_activity(turn.session, activity_id=draft.activity_id, changed_by=turn.person.id,
                                             name=draft.field, value=value, now=turn.now, tz=turn.tz)
    except ActivityError as error:
        turn.say(CHANGE_ERRORS.get(error.reason, _("修改失败。")))
        return
    turn.say(_("已修改「{title}」的{field}，已通知报名和候补的 {count} 个账号。", title=result.activity.title,
               field=FIELD_LABELS[draft.field], count=result.notified),
             [turn.choice(_("查看活动"), OpenActivity(draft.activity_id).pack())])
    if result.promoted:
        turn.say(_("候补名单上的 {count} 人已转为正式参加，并已通知他们。", count=len(result.promoted)))


EDIT_FLOW = Flow(
    "editact",
    EditDraft,
    [
        Field("field", edit_title, parse_field, label=_("修改项"), show=show_field, choices=field_choices),
        Field("title", _("新的活动名称："), parse_title, label=_("名称"), show=_shows("title"), when=_editing("title")),
        Field("start", _("新的开始时间（如「12月20日 下午2点半」「下周六上午9点到11点」）："), parse_start, label=_("时间"),
              show=show_time, store=store_start, confirm=confirm_start, when=_editing("time")),
        Field("end", _("新的结束时间（同一天可只写「11:30」或「下午5点」）："), parse_end,
              when=lambda draft: draft.field == "time" and draft.end is None),
        Field("place", _("新的活动地点："), parse_place, label=_("地点"), show=_shows("place"), when=_editing("place")),
        Field("capacity", _("新的名额（1–1000）："), parse_capacity, label=_("名额"), show=_shows("capacity"),
              when=_editing("capacity")),
        Field("description", _("新的活动介绍（不需要可回复「无」）："), parse_description, label=_("介绍"),
              show=_shows("description"), when=_editing("description")),
    ],
    done=save_edit,
    requires=Role.COORDINATOR,
    title=lambda turn, draft: _("请确认对「{title}」的修改（会通知已报名和候补的志愿者）：", title=draft.activity_title),
    confirm_label=_("确认修改"),
    errors={
        # the publish flow's own texts for the fields both flows read
        **{key: PUBLISH_FLOW.errors[key] for key in ("title", "description", "place", "datetime_format",
                                                    "start_past", "end_format", "end_order", "number_format")},
        "field": _("请回复数字选择要修改的一项："),
        "capacity_below": lambda turn, draft: _(
            "已有 {count} 人报名，名额不能少于 {count}。请输入不少于 {count} 的数字：", count=draft.confirmed),
    },
)
EDIT_FLOW.register(router)


@router.command("edact", words=words("activities", "edact"), takes_arg=True, payload=EditActivity, optional=True,
                requires=Role.COORDINATOR)
async def edit_activity(turn: Turn, p: EditActivity | None) -> None:
    if p is None:
        await choose_activity(turn, EditActivity, _("要修改哪个活动？"))
        return
    activity = await _changeable(turn, p.activity_id)
    if activity is None:
        return
    assert activity.id is not None
    confirmed = await activities_service.count_confirmed(turn.session, activity_id=activity.id)
    old = {"title": activity.title, "time": turn.fmt_span(activity.start_at, activity.end_at),
           "place": activity.place, "capacity": str(activity.capacity), "description": activity.description}
    await EDIT_FLOW.start(turn, EditDraft(activity_id=activity.id, activity_title=activity.title, old=old,
                                          confirmed=confirmed))


# ---- cancelling ----------------------------------------------------------------------------------
def parse_reason(_turn: Turn, text: str) -> str:
    if not 2 <= len(text) <= 200:
        raise InvalidInput("reason")
    return text


async def save_cancel(turn: Turn, draft: CancelDraft) -> None:
    if await managed_activity(turn, draft.activity_id) is None:
        return
    try:
        result = await service.cancel_activity(turn.session, activity_id=draft.activity_id,
                                               changed_by=turn.person.id, reason=draft.reason or "",
                                               now=turn.now, tz=turn.tz)
    except ActivityError as error:
        turn.say(CHANGE_ERRORS.get(error.reason, _("取消失败。")))
        return
    turn.say(_("已取消「{title}」，已通知报名和候补的 {count} 个账号。", title=result.activity.title,
               count=result.notified))


CANCEL_FLOW = Flow(
    "cxact",
    CancelDraft,
    [
        Field("reason", lambda turn, draft: _("请输入取消「{title}」的原因（会发给已报名的志愿者）：",
                                              title=draft.activity_title), parse_reason, label=_("原因")),
    ],
    done=save_cancel,
    requires=Role.COORDINATOR,
    title=lambda turn, draft: _("确认取消活动「{title}」（{when}）？已报名 {signed} 人、候补 {waiting} 人会收到通知。",
                                title=draft.activity_title, when=draft.when, signed=draft.signed,
                                waiting=draft.waiting),
    confirm_label=_("确认取消活动"),
    errors={"reason": _("原因需要 2–200 个字，请重新输入：")},
)
CANCEL_FLOW.register(router)


@router.command("cxact", words=words("activities", "cxact"), takes_arg=True, payload=CancelActivity, optional=True)
async def cancel_activity(turn: Turn, p: CancelActivity | None) -> None:
    if not await turn.coordinates_any() and not await turn.admin():
        if p is None:  # a volunteer's "取消活动" means their own sign-up
            turn.say(_("要取消自己的报名，请打开「我的报名」选择活动。"), [turn.choice(_("我的报名"), "mine")])
        else:
            deny(turn)
        return
    if p is None:
        await choose_activity(turn, CancelActivity, _("要取消哪个活动？"))
        return
    activity = await _changeable(turn, p.activity_id)
    if activity is None:
        return
    assert activity.id is not None
    entries = await activities_service.roster_entries(turn.session, activity_id=activity.id)
    await CANCEL_FLOW.start(turn, CancelDraft(
        activity_id=activity.id, activity_title=activity.title,
        when=turn.fmt_span(activity.start_at, activity.end_at),
        signed=sum(e.status == "confirmed" for e in entries), waiting=sum(e.status == "waitlist" for e in entries)))


# ---- shared --------------------------------------------------------------------------------------
async def _changeable(turn: Turn, activity_id: int) -> Activity | None:
    activity = await managed_activity(turn, activity_id)
    if activity is None:
        return None
    if activity.status != "open":
        turn.say(CHANGE_ERRORS["cancelled"])
        return None
    if activity.end_at <= turn.now:
        turn.say(CHANGE_ERRORS["over"])
        return None
    return activity
