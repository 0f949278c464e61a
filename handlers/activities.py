"""Activities: list, details, join / cancel with waitlist, roster, create, nearby, check-in."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlmodel import select

from common.i18n import _
from common.taxonomy import CATEGORIES, CATEGORY_LABELS
from handlers.menu import help_
from handlers.messages import Choice
from handlers.turn import FeatureRouter, Turn
from handlers.validation import (
    InvalidInput,
    parse_coordinates,
    parse_local_datetime,
    parse_local_time,
    parse_positive_int,
)
from models import Activity, ActivityBase, Organization, Signup
from services import activities as service
from services.hours import HoursError, activity_length_hours, record_activity_hours
from services.people import PermissionDenied, managed_organizations, require_manager

router = FeatureRouter("activities")
FLOW = "newact"

JOIN_ERRORS = {
    "not_found": ("找不到这个活动。", "That activity does not exist."),
    "closed": ("这个活动已经关闭报名。", "Sign-up for this activity is closed."),
    "started": ("活动已经开始，不能再报名或取消了。", "The activity has started; sign-ups can no longer change."),
    "already_confirmed": ("你已经报名了这个活动。", "You have already signed up."),
    "already_waitlist": ("你已经在候补名单上了。", "You are already on the waitlist."),
    "not_signed_up": ("你没有报名这个活动。", "You are not signed up for this activity."),
}


def category_label(turn: Turn, code: str) -> str:
    label = CATEGORY_LABELS.get(code, CATEGORY_LABELS["other"])
    return label["en"] if turn.lang == "en" else turn.t(label["zh-Hans"], label["en"])



async def _managed(turn: Turn) -> list[Organization]:
    return await managed_organizations(turn.session, person_id=turn.person.id, admin=await turn.admin())


async def _can_manage(turn: Turn, activity: Activity) -> bool:
    try:
        await require_manager(turn.session, person_id=turn.person.id, admin=await turn.admin(),
                              organization_id=activity.organization_id)
    except PermissionDenied:
        return False
    return True


def deny(turn: Turn) -> None:
    turn.say(_("抱歉，只有该组织的协调员或管理员可以这样做。"))


async def _load(turn: Turn, arg: str) -> Activity | None:
    activity = await turn.session.get(Activity, int(arg)) if arg.isdigit() else None
    if activity is None:
        turn.say(_("找不到这个活动。"))
    return activity


def _line(turn: Turn, index: int, activity: Activity) -> str:
    return f"{index}. {activity.title}\n   {turn.fmt_span(activity.start_at, activity.end_at)} · {activity.place}"


# ---- browsing ----------------------------------------------------------------------------------
@router.command("acts")
async def list_activities(turn: Turn, arg: str) -> None:
    page = int(arg) if arg.isdigit() and int(arg) > 0 else 1
    size = turn.options.page_size
    rows, total = await service.list_upcoming(turn.session, now=turn.now, offset=(page - 1) * size, limit=size)
    if total == 0:
        turn.say(_("近期还没有志愿活动，有新活动时我会通知你。"))
        return
    pages = math.ceil(total / size)
    if not rows:
        page, rows = pages, (await service.list_upcoming(turn.session, now=turn.now,
                                                         offset=(pages - 1) * size, limit=size))[0]
    lines = [turn.t(_("近期志愿活动（第 {page}/{pages} 页）：", page=page, pages=pages))]
    lines += [_line(turn, i, a) for i, a in enumerate(rows, 1)]
    lines.append(turn.t(_("回复序号查看详情和报名。")))
    choices = [Choice(label=a.title[:30], value=f"act:{a.id}") for a in rows]
    if page > 1:
        choices.append(turn.choice(_("上一页"), f"acts:{page - 1}"))
    if page < pages:
        choices.append(turn.choice(_("下一页"), f"acts:{page + 1}"))
    text = "\n".join(lines)
    turn.say(text, choices)


@router.command("act")
async def show_activity(turn: Turn, arg: str) -> None:
    activity = await _load(turn, arg)
    if activity is None:
        return
    confirmed = await service.count_confirmed(turn.session, activity_id=activity.id)
    mine = next((s for s, _ in await service.my_signups(turn.session, person_id=turn.person.id, now=turn.now)
                 if s.activity_id == activity.id), None)
    status_zh = {"confirmed": "你已报名", "waitlist": "你在候补名单上"}.get(mine.status if mine else "", "")
    status_en = {"confirmed": "You are signed up", "waitlist": "You are on the waitlist"}.get(
        mine.status if mine else "", "")
    body_zh = (f"【{activity.title}】\n类别：{category_label(turn, activity.category)}\n"
               f"时间：{turn.fmt_span(activity.start_at, activity.end_at)}\n地点：{activity.place}\n"
               f"名额：{confirmed}/{activity.capacity}" + ("（已满，可候补）" if confirmed >= activity.capacity else "")
               + (f"\n{activity.description}" if activity.description else "")
               + (f"\n{status_zh}" if status_zh else ""))
    body_en = (f"[{activity.title}]\nCategory: {category_label(turn, activity.category)}\n"
               f"When: {turn.fmt_span(activity.start_at, activity.end_at)}\nWhere: {activity.place}\n"
               f"Places: {confirmed}/{activity.capacity}" + (" (full, waitlist open)" if confirmed >= activity.capacity
                                                            else "")
               + (f"\n{activity.description}" if activity.description else "")
               + (f"\n{status_en}" if status_en else ""))
    choices: list[Choice] = []
    if activity.status == "open" and activity.start_at > turn.now:
        if mine:
            choices.append(turn.choice(_("取消报名"), f"leave:{activity.id}"))
        else:
            choices.append(turn.choice("报名参加" if confirmed < activity.capacity else "加入候补",
                                       "Join" if confirmed < activity.capacity else "Join the waitlist",
                                       f"join:{activity.id}"))
    if await _can_manage(turn, activity):
        choices.append(turn.choice(_("查看名单"), f"roster:{activity.id}"))
        choices.append(turn.choice(_("记录时长"), f"rec:{activity.id}"))
    choices.append(turn.choice(_("返回列表"), "acts:1"))
    turn.say(body_zh, body_en, choices)


@router.command("join")
async def join(turn: Turn, arg: str) -> None:
    if turn.person.status != "active":
        turn.say(_("报名活动需要先完成志愿者实名注册。"),
                 [turn.choice(_("现在注册"), "reg")])
        return
    activity = await _load(turn, arg)
    if activity is None:
        return
    try:
        result = await service.join_activity(turn.session, activity_id=activity.id, person_id=turn.person.id,
                                             now=turn.now)
    except service.ActivityError as error:
        turn.say(*JOIN_ERRORS.get(error.reason, ("报名失败。", "Could not join.")))
        return
    when = turn.fmt_span(activity.start_at, activity.end_at)
    if result.waitlisted:
        turn.say(_("名额已满，你已加入「{title}」的候补名单（第 {position} 位）。有人取消时会自动转正并通知你。", title=activity.title, position=result.position),
                 [turn.choice(_("取消候补"), f"leave:{activity.id}")])
    else:
        turn.say(_("报名成功！「{title}」\n时间：{when}\n地点：{place}\n如不能参加，请在活动开始前取消。", title=activity.title, when=when, place=activity.place),
                 [turn.choice(_("取消报名"), f"leave:{activity.id}"), turn.choice(_("我的报名"), "mine")])


@router.command("leave")
async def leave(turn: Turn, arg: str) -> None:
    activity = await _load(turn, arg)
    if activity is None:
        return
    try:
        await service.cancel_signup(turn.session, activity_id=activity.id, person_id=turn.person.id, now=turn.now)
    except service.ActivityError as error:
        turn.say(*JOIN_ERRORS.get(error.reason, ("取消失败。", "Could not cancel.")))
        return
    turn.say(_("已取消「{title}」的报名。", title=activity.title))


@router.command("mine")
async def my_signups(turn: Turn, _arg: str) -> None:
    rows = await service.my_signups(turn.session, person_id=turn.person.id, now=turn.now)
    if not rows:
        turn.say(_("你目前没有报名的活动。"), [turn.choice(_("看看活动"), "acts:1")])
        return
    lines = [turn.t(_("我的报名："))]
    for i, (signup, activity) in enumerate(rows, 1):
        mark = turn.t(_("（候补）")) if signup.status == "waitlist" else ""
        lines.append(_line(turn, i, activity) + mark)
    lines.append(turn.t(_("回复序号查看详情或取消。")))
    text = "\n".join(lines)
    turn.say(text, [Choice(label=a.title[:30], value=f"act:{a.id}") for _distance, a in rows])


@router.command("near")
async def nearby(turn: Turn, arg: str) -> None:
    try:
        lat, lon = parse_coordinates(arg)
    except InvalidInput:
        turn.say(_("没能读出位置。"))
        return
    rows, _total = await service.list_upcoming(turn.session, now=turn.now, offset=0, limit=500)
    located = sorted(
        ((haversine_km(lat, lon, a.latitude, a.longitude), a) for a in rows
         if a.latitude is not None and a.longitude is not None),
        key=lambda pair: pair[0],
    )[: turn.options.page_size]
    if not located:
        turn.say(_("附近暂时没有标注位置的志愿活动。"),
                 [turn.choice(_("全部活动"), "acts:1")])
        return
    lines = [turn.t(_("离你最近的志愿活动："))]
    for i, (km, a) in enumerate(located, 1):
        lines.append(f"{_line(turn, i, a)} · {km:.1f} km")
    text = "\n".join(lines)
    turn.say(text, [Choice(label=a.title[:30], value=f"act:{a.id}") for _distance, a in located])


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


# ---- coordinators ------------------------------------------------------------------------------
@router.command("roster")
async def roster(turn: Turn, arg: str) -> None:
    activity = await _load(turn, arg)
    if activity is None:
        return
    if not await _can_manage(turn, activity):
        deny(turn)
        return
    rows = await service.roster(turn.session, activity_id=activity.id)
    confirmed = [(s, p) for s, p in rows if s.status == "confirmed"]
    waiting = [(s, p) for s, p in rows if s.status == "waitlist"]
    lines = [turn.t(_("「{title}」报名名单：{count}/{capacity}", title=activity.title, count=len(confirmed), capacity=activity.capacity))]
    for i, (signup, person) in enumerate(confirmed, 1):
        check = turn.t(_(" 已签到")) if signup.checkin_at else ""
        lines.append(f"{i}. {person.name} {person.phone_masked or ''}{check}")
    if waiting:
        lines.append(turn.t(_("候补 {count} 人：", count=len(waiting))))
        lines += [f"{i}. {p.name}" for i, (_signup, p) in enumerate(waiting, 1)]
    text = "\n".join(lines)
    turn.say(text)


@router.command("newact")
async def new_activity(turn: Turn, _arg: str) -> None:
    orgs = await _managed(turn)
    if not orgs:
        deny(turn)
        return
    turn.state.data = {"org_ids": [o.id for o in orgs]}
    turn.ask(FLOW, "title", _("发布新活动。请输入活动名称："))


@router.step(FLOW, "title")
async def on_title(turn: Turn, text: str) -> None:
    if not 2 <= len(text) <= 60:
        turn.ask(FLOW, "title", _("活动名称需要 2–60 个字，请重新输入："))
        return
    turn.set_data(title=text)
    turn.ask(FLOW, "description", _("请简单介绍活动内容（不需要可回复「无」）："))


@router.step(FLOW, "description")
async def on_description(turn: Turn, text: str) -> None:
    if len(text) > 1000:
        turn.ask(FLOW, "description", _("介绍请控制在 1000 字以内："))
        return
    turn.set_data(description="" if text.lower() in ("无", "無", "none", "-") else text)
    choices = [Choice(label=category_label(turn, c), value=f"a:{c}") for c in CATEGORIES]
    turn.ask(FLOW, "category", _("请选择活动类别："), choices)


@router.step(FLOW, "category")
async def on_category(turn: Turn, text: str) -> None:
    code = text.removeprefix("a:")
    if code not in CATEGORIES:
        choices = [Choice(label=category_label(turn, c), value=f"a:{c}") for c in CATEGORIES]
        turn.ask(FLOW, "category", _("请回复数字选择类别："), choices)
        return
    turn.set_data(category=code)
    turn.ask(FLOW, "place", _("活动地点（如「花家地社区活动中心」）："))


@router.step(FLOW, "place")
async def on_place(turn: Turn, text: str) -> None:
    if not 2 <= len(text) <= 120:
        turn.ask(FLOW, "place", _("地点需要 2–120 个字："))
        return
    turn.set_data(place=text)
    turn.ask(FLOW, "coords", _("如需按距离推荐，请发送坐标「纬度,经度」（如 39.98,116.47），或回复「跳过」："),
             [turn.choice(_("跳过"), "a:skip")])


@router.step(FLOW, "coords")
async def on_coords(turn: Turn, text: str) -> None:
    if text in ("a:skip", "跳过", "skip"):
        turn.set_data(latitude=None, longitude=None)
    else:
        try:
            lat, lon = parse_coordinates(text)
        except InvalidInput:
            turn.ask(FLOW, "coords", _("坐标格式不对，应为「纬度,经度」，如 39.98,116.47；或回复「跳过」："), [turn.choice(_("跳过"), "a:skip")])
            return
        turn.set_data(latitude=lat, longitude=lon)
    turn.ask(FLOW, "start", _("开始时间（如 2026-12-05 09:00 或 12月5日 9:00）："))


@router.step(FLOW, "start")
async def on_start(turn: Turn, text: str) -> None:
    try:
        start_local = parse_local_datetime(text, today=turn.today)
    except InvalidInput:
        turn.ask(FLOW, "start", _("时间格式不对，请按「2026-12-05 09:00」的格式输入开始时间："))
        return
    if turn.to_utc(start_local) <= turn.now:
        turn.ask(FLOW, "start", _("开始时间已经过去了，请输入一个将来的时间："))
        return
    turn.set_data(start=start_local.isoformat())
    turn.ask(FLOW, "end", _("结束时间（同一天可只写「11:30」）："))


@router.step(FLOW, "end")
async def on_end(turn: Turn, text: str) -> None:
    start_local = datetime.fromisoformat(turn.data["start"])
    try:
        try:
            end_time = parse_local_time(text)
            end_local = datetime.combine(start_local.date(), end_time)
        except InvalidInput:
            end_local = parse_local_datetime(text, today=start_local.date())
    except InvalidInput:
        turn.ask(FLOW, "end", _("时间格式不对，请输入结束时间，如「11:30」或「2026-12-05 11:30」："))
        return
    if end_local <= start_local or end_local - start_local > timedelta(days=7):
        turn.ask(FLOW, "end", _("结束时间要晚于开始时间（且不超过 7 天），请重新输入："))
        return
    turn.set_data(end=end_local.isoformat())
    turn.ask(FLOW, "capacity", _("需要多少名志愿者？（1–1000）"))


@router.step(FLOW, "capacity")
async def on_capacity(turn: Turn, text: str) -> None:
    try:
        capacity = parse_positive_int(text, maximum=1000)
    except InvalidInput:
        turn.ask(FLOW, "capacity", _("请输入 1–1000 之间的数字："))
        return
    turn.set_data(capacity=capacity)
    org_ids: list[int] = turn.data["org_ids"]
    if len(org_ids) == 1:
        turn.set_data(organization_id=org_ids[0])
        await _confirm(turn)
        return
    orgs = [await turn.session.get(Organization, i) for i in org_ids]
    turn.ask(FLOW, "org", _("由哪个组织发布？"),
             [Choice(label=o.name, value=f"a:{o.id}") for o in orgs if o])


@router.step(FLOW, "org")
async def on_org(turn: Turn, text: str) -> None:
    value = text.removeprefix("a:")
    if not value.isdigit() or int(value) not in turn.data["org_ids"]:
        orgs = [await turn.session.get(Organization, i) for i in turn.data["org_ids"]]
        turn.ask(FLOW, "org", _("请回复数字选择组织："),
                 [Choice(label=o.name, value=f"a:{o.id}") for o in orgs if o])
        return
    turn.set_data(organization_id=int(value))
    await _confirm(turn)


async def _confirm(turn: Turn) -> None:
    d = turn.data
    org = await turn.session.get(Organization, d["organization_id"])
    start, end = turn.to_utc(datetime.fromisoformat(d["start"])), turn.to_utc(datetime.fromisoformat(d["end"]))
    text_zh = (f"请确认活动信息：\n名称：{d['title']}\n类别：{category_label(turn, d['category'])}\n地点：{d['place']}\n"
               f"时间：{turn.fmt_span(start, end)}\n名额：{d['capacity']}\n组织：{org.name if org else ''}")
    text_en = (f"Please confirm:\nTitle: {d['title']}\nCategory: {category_label(turn, d['category'])}\n"
               f"Place: {d['place']}\nWhen: {turn.fmt_span(start, end)}\nPlaces: {d['capacity']}\n"
               f"Organization: {org.name if org else ''}")
    turn.ask(FLOW, "confirm", text_zh, text_en,
             [turn.choice(_("确认发布"), "a:yes"), turn.choice(_("放弃"), "a:no")])


@router.step(FLOW, "confirm")
async def on_confirm(turn: Turn, text: str) -> None:
    if text == "a:no":
        turn.end_flow()
        turn.say(_("已放弃，活动没有发布。"))
        return
    if text != "a:yes":
        turn.say(_("请回复 1 确认发布，或 2 放弃。"))
        await _confirm(turn)
        return
    d = turn.data
    # the role is checked again at the moment of writing, not only when the dialog began
    try:
        await require_manager(turn.session, person_id=turn.person.id, admin=await turn.admin(),
                              organization_id=d["organization_id"])
    except PermissionDenied:
        turn.end_flow()
        deny(turn)
        return
    data = ActivityBase(
        title=d["title"], description=d.get("description", ""), category=d["category"], place=d["place"],
        latitude=d.get("latitude"), longitude=d.get("longitude"),
        start_at=turn.to_utc(datetime.fromisoformat(d["start"])), end_at=turn.to_utc(datetime.fromisoformat(d["end"])),
        capacity=d["capacity"], organization_id=d["organization_id"],
    )
    activity = await service.create_activity(turn.session, data=data, created_by=turn.person.id, now=turn.now)
    turn.end_flow()
    turn.say(_("活动已发布（编号 {id}）。", id=activity.id),
             [turn.choice(_("查看活动"), f"act:{activity.id}")])


# ---- deep links and check-in -------------------------------------------------------------------
@router.command("start")
async def start_payload(turn: Turn, arg: str) -> None:
    """Deep-link payloads: act_<id>, checkin_<code>, checkout_<code> (Telegram /start, WeChat scenes)."""
    kind, _sep, value = arg.partition("_")
    if kind == "act" and value.isdigit():
        await show_activity(turn, value)
    elif kind in ("checkin", "checkout") and value:
        await check(turn, kind, value)
    else:
        await help_(turn, "")


@router.command("checkin")
async def checkin(turn: Turn, arg: str) -> None:
    await check(turn, "checkin", arg)


@router.command("checkout")
async def checkout(turn: Turn, arg: str) -> None:
    await check(turn, "checkout", arg)


async def check(turn: Turn, action: str, code: str) -> None:
    activity = (await turn.session.exec(select(Activity).where(Activity.checkin_code == code))).first()
    if activity is None:
        turn.say(_("签到码无效。"))
        return
    signup = (await turn.session.exec(select(Signup).where(
        Signup.activity_id == activity.id, Signup.person_id == turn.person.id, Signup.status == "confirmed"))).first()
    if signup is None:
        turn.say(_("你没有报名「{title}」，无法签到。", title=activity.title))
        return
    if turn.now < activity.start_at - timedelta(hours=2) or turn.now > activity.end_at + timedelta(hours=6):
        turn.say(_("现在不在这个活动的签到时间内。"))
        return
    if action == "checkin":
        if signup.checkin_at is None:
            signup.checkin_at = turn.now
            turn.session.add(signup)
        turn.say(_("签到成功：「{title}」，{strftime}。", title=activity.title, strftime=turn.local(signup.checkin_at).strftime('%H:%M')))
        return
    if signup.checkin_at is None:
        turn.say(_("你还没有签到，请先扫签到码。"))
        return
    signup.checkout_at = turn.now
    turn.session.add(signup)
    worked = (min(turn.now, activity.end_at) - max(signup.checkin_at, activity.start_at)).total_seconds() / 3600
    hours = round(max(0.0, min(worked, activity_length_hours(activity))), 2)
    if hours <= 0:
        turn.say(_("已签退，本次没有可记录的服务时长。"))
        return
    try:
        await record_activity_hours(turn.session, activity=activity, person_id=turn.person.id, hours=hours,
                                    recorded_by=None, served_on=turn.local(activity.start_at).date(), now=turn.now,
                                    source="checkin")
    except HoursError:
        turn.say(_("已签退，但时长没能自动记录，请联系协调员。"))
        return
    turn.say(_("签退成功，本次记录服务时长 {hours} 小时。辛苦了！", hours=f'{hours:g}'))
