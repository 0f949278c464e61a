"""Activity announcements a coordinator posts into a group chat, with a join button for its members.

``announce:<id>`` (typed ``/announce <id>``) answers with the announcement text and a 报名 button
whose value is ``join:<id>``: whoever presses it joins through the ordinary join command.
``announce`` alone lists the activities this person may announce.
"""

from __future__ import annotations

from handlers.activities import category_label
from handlers.messages import Choice
from handlers.turn import FeatureRouter, Turn
from models import Activity
from services import activities as service
from services.people import PermissionDenied, managed_organizations, require_manager

router = FeatureRouter("announce")


def _deny(turn: Turn) -> None:
    turn.say("抱歉，只有该组织的协调员或管理员可以发布活动公告。",
             "Sorry, only a coordinator of this organization or an admin can announce its activities.")


@router.command("announce")
async def announce(turn: Turn, arg: str) -> None:
    admin = await turn.admin()
    arg = arg.strip()
    if not arg:
        await _announceable(turn, admin)
        return
    activity = await turn.session.get(Activity, int(arg)) if arg.isdigit() else None
    if activity is None:
        turn.say("找不到这个活动。用法：/announce 活动编号", "That activity does not exist. Usage: /announce <activity id>")
        return
    try:
        await require_manager(turn.session, person_id=turn.person.id, admin=admin,
                              organization_id=activity.organization_id)
    except PermissionDenied:
        _deny(turn)
        return
    if activity.status != "open" or activity.start_at <= turn.now:
        turn.say("这个活动已经开始或关闭，不能再招募了。", "That activity has started or is closed; it cannot be announced.")
        return
    confirmed = await service.count_confirmed(turn.session, activity_id=activity.id)
    left = max(0, activity.capacity - confirmed)
    when = turn.fmt_span(activity.start_at, activity.end_at)
    description = f"\n{activity.description}" if activity.description else ""
    turn.say(
        f"📣 志愿活动招募\n【{activity.title}】\n类别：{category_label(turn, activity.category)}\n时间：{when}\n"
        f"地点：{activity.place}\n剩余名额：{left}/{activity.capacity}{description}\n点击下方「报名」参加。",
        f"📣 Volunteers wanted\n[{activity.title}]\nCategory: {category_label(turn, activity.category)}\n"
        f"When: {when}\nWhere: {activity.place}\nPlaces left: {left}/{activity.capacity}{description}\n"
        "Press \"Join\" below to take part.",
        [turn.choice("报名", "Join", f"join:{activity.id}")],
    )


async def _announceable(turn: Turn, admin: bool) -> None:
    organizations = await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)
    if not organizations:
        _deny(turn)
        return
    rows, _ = await service.list_upcoming(turn.session, now=turn.now, offset=0, limit=turn.options.page_size,
                                          organization_ids=[o.id for o in organizations if o.id is not None])
    rows = [a for a in rows if a.start_at > turn.now]
    if not rows:
        turn.say("你负责的组织近期没有可以招募的活动。", "Your organizations have no upcoming activities to announce.")
        return
    turn.say("要发布哪个活动的招募公告？", "Which activity should I announce?",
             [Choice(label=a.title[:30], value=f"announce:{a.id}") for a in rows])
