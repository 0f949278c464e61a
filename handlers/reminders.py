"""Reminder settings by message (关闭节日提醒 / 打开活动提醒…) and the answer to an activity reminder."""

from __future__ import annotations

from sqlmodel import select

from common.i18n import _
from handlers.turn import FeatureRouter, Turn
from models import Activity, Signup
from services.reminders import preferences, set_preference

router = FeatureRouter("reminders")

KIND_LABELS = {
    "observance": ("节日提醒", "observance reminders"),
    "activity": ("活动提醒", "activity reminders"),
    "broadcast": ("群发通知", "broadcasts"),
}

# typed words (compared after 繁→简 and lower-casing) → command values; merged into the engine's table
REMINDER_TEXT_COMMANDS: dict[str, str] = {"提醒设置": "remind", "通知设置": "remind", "/reminders": "remind",
                                          "reminders": "remind", "reminder settings": "remind"}
for _kind, (_zh, _en) in KIND_LABELS.items():
    for _verb in ("关闭", "取消", "不要"):
        REMINDER_TEXT_COMMANDS[f"{_verb}{_zh}"] = f"remind:off:{_kind}"
    for _verb in ("打开", "开启", "恢复"):
        REMINDER_TEXT_COMMANDS[f"{_verb}{_zh}"] = f"remind:on:{_kind}"
    REMINDER_TEXT_COMMANDS[f"{_en} off"] = f"remind:off:{_kind}"
    REMINDER_TEXT_COMMANDS[f"{_en} on"] = f"remind:on:{_kind}"


@router.command("remind")
async def reminder_settings(turn: Turn, arg: str) -> None:
    action, _sep, kind = arg.partition(":")
    if action in ("on", "off"):
        if kind not in KIND_LABELS:
            turn.say(_("没有这种提醒。"))
        else:
            await set_preference(turn.session, person_id=turn.person.id, kind=kind, enabled=action == "on",
                                 now=turn.now)
            zh, en = KIND_LABELS[kind]
            if action == "on":
                turn.say(f"已打开{zh}。", f"{en.capitalize()} are on.")
            else:
                turn.say(f"已关闭{zh}，以后不再发送。想恢复时回复「打开{zh}」。",
                         f"{en.capitalize()} are off. Reply \"打开{zh}\" to turn them back on.")
    current = await preferences(turn.session, person_id=turn.person.id)
    lines, choices = [turn.t(_("你的提醒设置："))], []
    for name, enabled in current.items():
        zh, en = KIND_LABELS[name]
        lines.append(f"· {turn.t(zh, en)}：{turn.t(_('开')) if enabled else turn.t(_('关'))}")
        if enabled:
            choices.append(turn.choice(f"关闭{zh}", f"Turn {en} off", f"remind:off:{name}"))
        else:
            choices.append(turn.choice(f"打开{zh}", f"Turn {en} on", f"remind:on:{name}"))
    text = "\n".join(lines)
    turn.say(text, choices)


@router.command("confirm")
async def confirm_attendance(turn: Turn, arg: str) -> None:
    activity = await turn.session.get(Activity, int(arg)) if arg.isdigit() else None
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
    turn.say(_("好的，已确认参加「{title}」（{span}，{place}）。期待见到你！", title=activity.title, span=turn.fmt_span(activity.start_at, activity.end_at), place=activity.place),
             [turn.choice(_("取消报名"), f"leave:{activity.id}")])
