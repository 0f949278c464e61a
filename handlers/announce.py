"""Activity announcements a coordinator posts into a group chat, with a join button for its members.

``announce:<id>`` (typed ``/announce <id>``) answers with the announcement text and a 报名 button
whose value is ``join:<id>``: whoever presses it joins through the ordinary join command.
``announce`` alone lists the activities this person may announce.
"""

from __future__ import annotations

from common.i18n import _
from handlers.activities_common import can_manage, category_name, managed
from handlers.activity_payloads import AnnounceActivity, JoinActivity, optional
from handlers.activity_words import words
from handlers.messages import Choice
from handlers.payloads import InvalidPayload
from handlers.permissions import ORG_DENIED
from handlers.turn import FeatureRouter, Turn
from models import Activity
from services import activities as service

router = FeatureRouter("announce")


def _deny(turn: Turn) -> None:
    turn.say(ORG_DENIED)


# no requires=: a volunteer hears the per-organization refusal below, as group members are told today
@router.command("announce", words=words("announce", "announce"))
async def announce(turn: Turn, arg: str) -> None:
    try:
        target = optional(AnnounceActivity, arg.strip())
    except InvalidPayload:
        target = AnnounceActivity(0)  # no such activity: answered with the usage below
    if target is None:
        await _announceable(turn)
        return
    activity = await turn.session.get(Activity, target.activity_id) if target.activity_id else None
    if activity is None:
        turn.say(_("找不到这个活动。用法：/announce 活动编号"))
        return
    if not await can_manage(turn, activity.organization_id):
        _deny(turn)
        return
    if activity.status != "open" or activity.start_at <= turn.now:
        turn.say(_("这个活动已经开始或关闭，不能再招募了。"))
        return
    confirmed = await service.count_confirmed(turn.session, activity_id=activity.id)
    description = f"\n{activity.description}" if activity.description else ""
    turn.say(
        _("📣 志愿活动招募\n【{title}】\n类别：{value}\n时间：{when}\n地点：{place}\n剩余名额：{left}/{capacity}{description}\n"
          "点击下方「报名」参加。", title=activity.title, value=category_name(turn, activity.category),
          when=turn.fmt_span(activity.start_at, activity.end_at), place=activity.place,
          left=max(0, activity.capacity - confirmed), capacity=activity.capacity, description=description),
        [turn.choice(_("报名"), JoinActivity(activity.id).pack())],
    )


async def _announceable(turn: Turn) -> None:
    organizations = await managed(turn)
    if not organizations:
        _deny(turn)
        return
    rows, _total = await service.list_upcoming(turn.session, now=turn.now, offset=0, limit=turn.options.page_size,
                                               organization_ids=[o.id for o in organizations if o.id is not None])
    rows = [a for a in rows if a.start_at > turn.now]
    if not rows:
        turn.say(_("你负责的组织近期没有可以招募的活动。"))
        return
    turn.say(_("要发布哪个活动的招募公告？"),
             [Choice(label=a.title[:30], value=AnnounceActivity(a.id).pack()) for a in rows])
