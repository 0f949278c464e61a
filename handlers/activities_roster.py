"""查看名单: an activity's roster for its coordinators — sign-up, check-in, check-out, hours, no-shows."""

from __future__ import annotations

from datetime import datetime

from common.i18n import Text, _, join
from handlers.activities_common import choose_activity, managed_activity, router
from handlers.activity_payloads import ActivityRoster, ExportRoster, MarkNoShow, OpenActivity
from handlers.activity_words import words
from handlers.messages import Choice
from handlers.permissions import DENIED
from handlers.turn import Role, Turn
from services import activities as service
from services.activities import ActivityError, RosterEntry
from services.activity_changes import mark_no_show

NO_SHOW_ERRORS: dict[str, Text] = {
    "not_found": _("找不到这个活动。"),
    "not_signed_up": _("这位志愿者没有报名这个活动。"),
    "not_started": _("活动还没开始，不能标记缺席。"),
    "checked_in": _("这位志愿者已经签到，不能标记缺席。"),
}


@router.command("roster", words=words("activities", "roster"), takes_arg=True, payload=ActivityRoster,
                optional=True)
async def roster(turn: Turn, p: ActivityRoster | None) -> None:
    """查看名单 [N]; the role is checked here, after the number (an out-of-range one is an expired button)."""
    if p is None:
        if not await turn.coordinates_any() and not await turn.admin():
            turn.say(DENIED)
            return
        await choose_activity(turn, ActivityRoster, _("要查看哪个活动的名单？"), include_recent=True)
        return
    activity = await managed_activity(turn, p.activity_id)
    if activity is None:
        return
    assert activity.id is not None
    entries = await service.roster_entries(turn.session, activity_id=activity.id)
    confirmed = [e for e in entries if e.status == "confirmed"]
    waiting = [e for e in entries if e.status == "waitlist"]
    started = activity.start_at <= turn.now
    items: list[Text] = [_("「{title}」报名名单：{count}/{capacity}", title=activity.title, count=len(confirmed),
                           capacity=activity.capacity)]
    if activity.status == "cancelled":
        items.append(_("（活动已取消）"))
    if not entries:
        items.append(_("还没有人报名。"))
    for i, entry in enumerate(confirmed, 1):
        items.append(f"{i}. {entry.name} {entry.phone_masked}")
        items.append("   " + turn.text(join(_details(turn, entry, started=started), sep=" · ")))
    if waiting:
        items.append(_("候补 {count} 人：", count=len(waiting)))
        items += [f"{i}. {e.name}" for i, e in enumerate(waiting, 1)]
    choices: list[Choice] = []
    if started and activity.status == "open":
        for entry in confirmed:
            if entry.no_show:
                choices.append(turn.choice(_("取消缺席：{name}", name=entry.name),
                                           MarkNoShow(activity.id, entry.person_id, False).pack()))
            elif entry.checkin_at is None:
                choices.append(turn.choice(_("标记缺席：{name}", name=entry.name),
                                           MarkNoShow(activity.id, entry.person_id, True).pack()))
    choices.append(turn.choice(_("导出名单（Excel/CSV）"), ExportRoster(activity.id).pack()))
    choices.append(turn.choice(_("查看活动"), OpenActivity(activity.id).pack()))
    turn.say(join(items), choices)


def _details(turn: Turn, entry: RosterEntry, *, started: bool) -> list[Text]:
    def at(value: datetime | None) -> str:
        return turn.local(value).strftime("%m-%d %H:%M") if value is not None else ""

    parts: list[Text] = [_("报名 {time}", time=at(entry.signed_up_at))]
    if entry.checkin_at is not None:
        parts.append(_("签到 {time}", time=at(entry.checkin_at)))
    elif entry.no_show:
        parts.append(_("缺席"))
    elif started:
        parts.append(_("未签到"))
    if entry.checkout_at is not None:
        parts.append(_("签退 {time}", time=at(entry.checkout_at)))
    if entry.hours:
        parts.append(_("{hours} 小时", hours=f"{entry.hours:g}"))
    return parts


@router.command("noshow", payload=MarkNoShow, requires=Role.COORDINATOR)
async def no_show(turn: Turn, p: MarkNoShow) -> None:
    activity = await managed_activity(turn, p.activity_id)
    if activity is None:
        return
    try:
        await mark_no_show(turn.session, activity_id=p.activity_id, person_id=p.person_id, no_show=p.no_show,
                           now=turn.now)
    except ActivityError as error:
        turn.say(NO_SHOW_ERRORS.get(error.reason, _("没有标记成功。")))
        return
    turn.say(_("已标记缺席。") if p.no_show else _("已取消缺席标记。"))
    await roster(turn, ActivityRoster(p.activity_id))
