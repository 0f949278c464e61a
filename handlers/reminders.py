"""Reminder settings by message (关闭节日提醒 / 打开活动提醒…) and the answer to an activity reminder."""

from __future__ import annotations

from sqlmodel import select

from common.i18n import N_, Msg, _, lines
from handlers.payloads import InvalidPayload, Payload, payload
from handlers.reminder_words import words
from handlers.turn import FeatureRouter, Turn
from models import Activity, Signup
from services.reminders import preferences, set_preference

router = FeatureRouter("reminders")


KINDS = ("observance", "activity", "broadcast")
TURN_ON = {"observance": N_("打开节日提醒"), "activity": N_("打开活动提醒"), "broadcast": N_("打开群发通知")}
TURN_OFF = {"observance": N_("关闭节日提醒"), "activity": N_("关闭活动提醒"), "broadcast": N_("关闭群发通知")}
TURNED_ON = {"observance": N_("已打开节日提醒。"), "activity": N_("已打开活动提醒。"),
             "broadcast": N_("已打开群发通知。")}
TURNED_OFF = {
    "observance": N_("已关闭节日提醒，以后不再发送。想恢复时回复「打开节日提醒」。"),
    "activity": N_("已关闭活动提醒，以后不再发送。想恢复时回复「打开活动提醒」。"),
    "broadcast": N_("已关闭群发通知，以后不再发送。想恢复时回复「打开群发通知」。"),
}


def _kind_line(kind: str, state: Msg) -> Msg:
    """One line of the settings list: 「· 节日提醒：开」."""
    return {"observance": _("· 节日提醒：{state}", state=state), "activity": _("· 活动提醒：{state}", state=state),
            "broadcast": _("· 群发通知：{state}", state=state)}[kind]


@payload("remind")
class ReminderSwitch(Payload):
    """A reminder kind switched on or off: ``remind:off:observance``."""

    action: str  # "on" / "off"
    kind: str


@payload("confirm")
class ConfirmAttendance(Payload):
    activity_id: int


def _switch_words() -> dict[str, str]:
    """关闭节日提醒 → remind:off:observance, observance reminders on → remind:on:observance …"""
    section = words("reminders")
    found: dict[str, str] = {}
    for kind, label in section["kinds"].items():
        for action in ("off", "on"):
            value = ReminderSwitch(action, kind).pack()
            for verb in section[f"{action}_verbs"]:
                found[f"{verb}{label['zh']}".lower()] = value
            found[f"{label['en']} {action}".lower()] = value
    return found


@router.command("remind", words=words("reminders")["settings"])
async def reminder_settings(turn: Turn, arg: str) -> None:
    if arg:
        try:
            switch = ReminderSwitch.from_arg(arg)
        except InvalidPayload:
            switch = None
        if switch is None or switch.action not in ("on", "off") or switch.kind not in KINDS:
            turn.say(_("没有这种提醒。"))
        else:
            await set_preference(turn.session, person_id=turn.person.id, kind=switch.kind,
                                 enabled=switch.action == "on", now=turn.now)
            turn.say((TURNED_ON if switch.action == "on" else TURNED_OFF)[switch.kind])
    current = await preferences(turn.session, person_id=turn.person.id)
    rows, choices = [_("你的提醒设置：")], []
    for name, enabled in current.items():
        rows.append(_kind_line(name, _("开") if enabled else _("关")))
        if enabled:
            choices.append(turn.choice(TURN_OFF[name], ReminderSwitch("off", name).pack()))
        else:
            choices.append(turn.choice(TURN_ON[name], ReminderSwitch("on", name).pack()))
    turn.say(lines(*rows), choices)


router.words.update(_switch_words())


@router.command("confirm", payload=ConfirmAttendance)
async def confirm_attendance(turn: Turn, p: ConfirmAttendance) -> None:
    activity = await turn.session.get(Activity, p.activity_id)
    if activity is None:
        turn.say(_("找不到这个活动。"))
        return
    signup = (await turn.session.exec(
        select(Signup).where(Signup.activity_id == activity.id, Signup.person_id == turn.person.id))).first()
    if signup is None or signup.status == "cancelled":
        turn.say(_("你没有报名「{title}」。", title=activity.title),
                 [turn.choice(_("查看活动"), f"act:{activity.id}")])
        return
    if signup.status == "waitlist":
        turn.say(_("你还在「{title}」的候补名单上，转正时会通知你。", title=activity.title))
        return
    if activity.status != "open":
        turn.say(_("「{title}」已取消。", title=activity.title))
        return
    turn.say(_("好的，已确认参加「{title}」（{span}，{place}）。期待见到你！", title=activity.title,
               span=turn.fmt_span(activity.start_at, activity.end_at), place=activity.place),
             [turn.choice(_("取消报名"), f"leave:{activity.id}")])
