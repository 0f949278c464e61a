"""Activities: list, details, join / cancel with the waitlist, my sign-ups, nearby, the roster.

Publishing is in handlers/activities_publish.py, check-in in handlers/checkin.py; all of them
register on the one activities router (handlers/activities_common.py) that the engine loads here.
"""

from __future__ import annotations

import math

from common.i18n import Text, _, join, lines
from handlers import (  # noqa: F401 - they register on the router
    activities_manage,
    activities_publish,
    activities_roster,
    activities_search,
    checkin,
)
from handlers.activities_common import can_manage, category_name, expired, line, load, router
from handlers.activity_payloads import (
    ActivityPage,
    ActivityRoster,
    CancelActivity,
    EditActivity,
    JoinActivity,
    LeaveActivity,
    OpenActivity,
    RecordHours,
)
from handlers.activity_words import words
from handlers.menu import help_
from handlers.messages import Choice
from handlers.payloads import InvalidPayload
from handlers.turn import Turn
from handlers.validation import InvalidInput, parse_coordinates
from models import Activity
from services import activities as service

__all__ = ["category_name", "router"]

JOIN_ERRORS: dict[str, Text] = {
    "not_found": _("找不到这个活动。"),
    "closed": _("这个活动已经关闭报名。"),
    "started": _("活动已经开始，不能再报名或取消了。"),
    "already_confirmed": _("你已经报名了这个活动。"),
    "already_waitlist": _("你已经在候补名单上了。"),
    "not_signed_up": _("你没有报名这个活动。"),
}
MY_STATUS: dict[str, Text] = {"confirmed": _("你已报名"), "waitlist": _("你在候补名单上")}


def _open_choice(activity: Activity | service.ActivityLine) -> Choice:
    return Choice(label=activity.title[:30], value=OpenActivity(activity.id).pack())


# ---- browsing ----------------------------------------------------------------------------------
@router.command("acts", words=words("activities", "acts"), payload=ActivityPage, optional=True)
async def list_activities(turn: Turn, requested: ActivityPage | None) -> None:
    page = max(requested.page, 1) if requested else 1
    size = turn.options.page_size
    # list lines as rows (no Activity entity loaded): the page and its total in one statement
    rows, total = await service.upcoming_lines(turn.reads, now=turn.now, offset=(page - 1) * size, limit=size)
    if total == 0:
        turn.say(_("近期还没有志愿活动，有新活动时我会通知你。"))
        return
    pages = math.ceil(total / size)
    if not rows:
        page, rows = pages, (await service.upcoming_lines(turn.reads, now=turn.now,
                                                          offset=(pages - 1) * size, limit=size))[0]
    text = join([_("近期志愿活动（第 {page}/{pages} 页）：", page=page, pages=pages),
                 *(line(turn, i, a) for i, a in enumerate(rows, 1)), _("回复序号查看详情和报名。")])
    choices = [_open_choice(a) for a in rows]
    if page > 1:
        choices.append(turn.choice(_("上一页"), ActivityPage(page - 1).pack()))
    if page < pages:
        choices.append(turn.choice(_("下一页"), ActivityPage(page + 1).pack()))
    turn.say(text, choices + activities_search.filter_choices(turn))


@router.command("findacts")
async def find_in_words(turn: Turn, text: str) -> None:
    """Free text about activities ("周末的助老活动"): the activities it asks for, or all of them."""
    query = await activities_search.read_query(turn, text, explicit=False)
    if query:
        await activities_search.show_results(turn, query, 1)
    else:
        await list_activities(turn, None)


@router.command("act", payload=OpenActivity)
async def show_activity(turn: Turn, p: OpenActivity) -> None:
    # the activity, its places and the reader's own sign-up in one row: a volunteer's look opens no session
    activity = await service.activity_details(turn.reads, activity_id=p.activity_id, person_id=turn.person.id,
                                              now=turn.now)
    if activity is None:
        turn.say(JOIN_ERRORS["not_found"])
        return
    confirmed, mine = activity.confirmed, activity.mine
    full = confirmed >= activity.capacity
    places = (_("名额：{confirmed}/{capacity}（已满，可候补）", confirmed=confirmed, capacity=activity.capacity) if full
              else _("名额：{confirmed}/{capacity}", confirmed=confirmed, capacity=activity.capacity))
    body = lines(
        _("【{title}】", title=activity.title),
        _("类别：{category}", category=category_name(turn, activity.category)),
        _("时间：{when}", when=turn.fmt_span(activity.start_at, activity.end_at)),
        _("地点：{place}", place=activity.place),
        places,
        activity.description or None,
        _("此活动已取消。") if activity.status == "cancelled" else None,
        MY_STATUS.get(mine) if mine else None,
    )
    choices: list[Choice] = []
    if activity.status == "open" and activity.start_at > turn.now:
        if mine:
            choices.append(turn.choice(_("取消报名"), LeaveActivity(activity.id).pack()))
        else:
            choices.append(turn.choice(_("加入候补") if full else _("报名参加"), JoinActivity(activity.id).pack()))
    if await can_manage(turn, activity.organization_id):
        choices.append(turn.choice(_("查看名单"), ActivityRoster(activity.id).pack()))
        choices.append(turn.choice(_("记录时长"), RecordHours(activity.id).pack()))
        if activity.status == "open" and activity.end_at > turn.now:
            choices.append(turn.choice(_("修改活动"), EditActivity(activity.id).pack()))
            choices.append(turn.choice(_("取消活动"), CancelActivity(activity.id).pack()))
    choices.append(turn.choice(_("返回列表"), ActivityPage(1).pack()))
    turn.say(body, choices)


@router.command("join", payload=JoinActivity)
async def join_activity(turn: Turn, p: JoinActivity) -> None:
    if turn.person.status != "active":
        turn.say(_("报名活动需要先完成志愿者实名注册。"), [turn.choice(_("现在注册"), "reg")])
        return
    activity = await load(turn, p.activity_id)
    if activity is None:
        return
    try:
        result = await service.join_activity(turn.session, activity_id=activity.id, person_id=turn.person.id,
                                             now=turn.now)
    except service.ActivityError as error:
        turn.say(JOIN_ERRORS.get(error.reason, _("报名失败。")))
        return
    leave_value = LeaveActivity(activity.id).pack()
    if result.waitlisted:
        turn.say(_("名额已满，你已加入「{title}」的候补名单（第 {position} 位）。有人取消时会自动转正并通知你。",
                   title=activity.title, position=result.position),
                 [turn.choice(_("取消候补"), leave_value)])
    else:
        turn.say(_("报名成功！「{title}」\n时间：{when}\n地点：{place}\n如不能参加，请在活动开始前取消。",
                   title=activity.title, when=turn.fmt_span(activity.start_at, activity.end_at),
                   place=activity.place),
                 [turn.choice(_("取消报名"), leave_value), turn.choice(_("我的报名"), "mine")])


@router.command("leave", payload=LeaveActivity)
async def leave(turn: Turn, p: LeaveActivity) -> None:
    activity = await load(turn, p.activity_id)
    if activity is None:
        return
    try:
        await service.cancel_signup(turn.session, activity_id=activity.id, person_id=turn.person.id, now=turn.now)
    except service.ActivityError as error:
        turn.say(JOIN_ERRORS.get(error.reason, _("取消失败。")))
        return
    turn.say(_("已取消「{title}」的报名。", title=activity.title))


@router.command("mine", words=words("activities", "mine"))
async def my_signups(turn: Turn, _arg: str) -> None:
    rows = await service.my_signups(turn.reads, person_id=turn.person.id, now=turn.now)
    if not rows:
        turn.say(_("你目前没有报名的活动。"), [turn.choice(_("看看活动"), ActivityPage(1).pack())])
        return
    items: list[Text] = [_("我的报名：")]
    for i, (status, activity) in enumerate(rows, 1):
        mark = turn.text(_("（候补）")) if status == "waitlist" else ""
        items.append(line(turn, i, activity) + mark)
    items.append(_("回复序号查看详情或取消。"))
    turn.say(join(items), [_open_choice(a) for _status, a in rows])


@router.command("near")
async def nearby(turn: Turn, arg: str) -> None:
    """A shared location (or ``/near lat,lon``): the closest upcoming activities that have coordinates."""
    try:
        lat, lon = parse_coordinates(arg)
    except InvalidInput:
        turn.say(_("没能读出位置。"))
        return
    # the located activities as rows (lines and coordinates), not every upcoming activity as an entity
    rows = await service.located_upcoming(turn.reads, now=turn.now)
    located = sorted(((haversine_km(lat, lon, r.latitude, r.longitude), r.line) for r in rows),
                     key=lambda pair: pair[0])[: turn.options.page_size]
    if not located:
        turn.say(_("附近暂时没有标注位置的志愿活动。"), [turn.choice(_("全部活动"), ActivityPage(1).pack())])
        return
    items: list[Text] = [_("离你最近的志愿活动：")]
    items += [f"{line(turn, i, a)} · {km:.1f} km" for i, (km, a) in enumerate(located, 1)]
    turn.say(join(items), [_open_choice(a) for _distance, a in located])


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


# ---- deep links ----------------------------------------------------------------------------------
@router.command("start")
async def start_payload(turn: Turn, arg: str) -> None:
    """Deep-link payloads: act_<id>, checkin_<code>, checkout_<code> (Telegram /start, WeChat scenes)."""
    kind, _sep, value = arg.partition("_")
    if kind == "act":
        try:
            target = OpenActivity.from_arg(value)
        except InvalidPayload:
            await expired(turn)
            return
        await show_activity(turn, target)
    elif kind in ("checkin", "checkout") and value:
        await checkin.check(turn, kind, value)
    else:
        await help_(turn, "")
