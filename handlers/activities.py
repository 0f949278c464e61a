"""Activities: list, details, join / cancel with waitlist, roster, create, nearby, check-in."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlmodel import select

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
    turn.say("抱歉，只有该组织的协调员或管理员可以这样做。",
             "Sorry, only a coordinator of this organization or an admin can do that.")


async def _load(turn: Turn, arg: str) -> Activity | None:
    activity = await turn.session.get(Activity, int(arg)) if arg.isdigit() else None
    if activity is None:
        turn.say("找不到这个活动。", "That activity does not exist.")
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
        turn.say("近期还没有志愿活动，有新活动时我会通知你。", "No upcoming activities yet; I'll let you know.")
        return
    pages = math.ceil(total / size)
    if not rows:
        page, rows = pages, (await service.list_upcoming(turn.session, now=turn.now,
                                                         offset=(pages - 1) * size, limit=size))[0]
    lines = [turn.t(f"近期志愿活动（第 {page}/{pages} 页）：", f"Upcoming activities (page {page}/{pages}):")]
    lines += [_line(turn, i, a) for i, a in enumerate(rows, 1)]
    lines.append(turn.t("回复序号查看详情和报名。", "Reply with a number to see details and join."))
    choices = [Choice(label=a.title[:30], value=f"act:{a.id}") for a in rows]
    if page > 1:
        choices.append(turn.choice("上一页", "Previous page", f"acts:{page - 1}"))
    if page < pages:
        choices.append(turn.choice("下一页", "Next page", f"acts:{page + 1}"))
    text = "\n".join(lines)
    turn.say(text, text, choices)


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
            choices.append(turn.choice("取消报名", "Cancel my sign-up", f"leave:{activity.id}"))
        else:
            choices.append(turn.choice("报名参加" if confirmed < activity.capacity else "加入候补",
                                       "Join" if confirmed < activity.capacity else "Join the waitlist",
                                       f"join:{activity.id}"))
    if await _can_manage(turn, activity):
        choices.append(turn.choice("查看名单", "Roster", f"roster:{activity.id}"))
        choices.append(turn.choice("记录时长", "Record hours", f"rec:{activity.id}"))
    choices.append(turn.choice("返回列表", "Back to list", "acts:1"))
    turn.say(body_zh, body_en, choices)


@router.command("join")
async def join(turn: Turn, arg: str) -> None:
    if turn.person.status != "active":
        turn.say("报名活动需要先完成志愿者实名注册。", "Please register as a volunteer before joining activities.",
                 [turn.choice("现在注册", "Register now", "reg")])
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
        turn.say(f"名额已满，你已加入「{activity.title}」的候补名单（第 {result.position} 位）。有人取消时会自动转正并通知你。",
                 f"The activity is full; you are number {result.position} on the waitlist for \"{activity.title}\". "
                 "You'll be told if a place opens up.",
                 [turn.choice("取消候补", "Leave the waitlist", f"leave:{activity.id}")])
    else:
        turn.say(f"报名成功！「{activity.title}」\n时间：{when}\n地点：{activity.place}\n如不能参加，请在活动开始前取消。",
                 f"You're in! \"{activity.title}\"\nWhen: {when}\nWhere: {activity.place}\n"
                 "If you can't come, please cancel before it starts.",
                 [turn.choice("取消报名", "Cancel", f"leave:{activity.id}"), turn.choice("我的报名", "My sign-ups", "mine")])


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
    turn.say(f"已取消「{activity.title}」的报名。", f"Your sign-up for \"{activity.title}\" is cancelled.")


@router.command("mine")
async def my_signups(turn: Turn, _arg: str) -> None:
    rows = await service.my_signups(turn.session, person_id=turn.person.id, now=turn.now)
    if not rows:
        turn.say("你目前没有报名的活动。", "You have no upcoming sign-ups.", [turn.choice("看看活动", "Browse", "acts:1")])
        return
    lines = [turn.t("我的报名：", "My sign-ups:")]
    for i, (signup, activity) in enumerate(rows, 1):
        mark = turn.t("（候补）", " (waitlist)") if signup.status == "waitlist" else ""
        lines.append(_line(turn, i, activity) + mark)
    lines.append(turn.t("回复序号查看详情或取消。", "Reply with a number to see details or cancel."))
    text = "\n".join(lines)
    turn.say(text, text, [Choice(label=a.title[:30], value=f"act:{a.id}") for _, a in rows])


@router.command("near")
async def nearby(turn: Turn, arg: str) -> None:
    try:
        lat, lon = parse_coordinates(arg)
    except InvalidInput:
        turn.say("没能读出位置。", "I couldn't read that location.")
        return
    rows, _ = await service.list_upcoming(turn.session, now=turn.now, offset=0, limit=500)
    located = sorted(
        ((haversine_km(lat, lon, a.latitude, a.longitude), a) for a in rows
         if a.latitude is not None and a.longitude is not None),
        key=lambda pair: pair[0],
    )[: turn.options.page_size]
    if not located:
        turn.say("附近暂时没有标注位置的志愿活动。", "No upcoming activities with a location near you.",
                 [turn.choice("全部活动", "All activities", "acts:1")])
        return
    lines = [turn.t("离你最近的志愿活动：", "Activities nearest to you:")]
    for i, (km, a) in enumerate(located, 1):
        lines.append(f"{_line(turn, i, a)} · {km:.1f} km")
    text = "\n".join(lines)
    turn.say(text, text, [Choice(label=a.title[:30], value=f"act:{a.id}") for _, a in located])


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
    lines = [turn.t(f"「{activity.title}」报名名单：{len(confirmed)}/{activity.capacity}",
                    f"Roster of \"{activity.title}\": {len(confirmed)}/{activity.capacity}")]
    for i, (signup, person) in enumerate(confirmed, 1):
        check = turn.t(" 已签到", " checked in") if signup.checkin_at else ""
        lines.append(f"{i}. {person.name} {person.phone_masked or ''}{check}")
    if waiting:
        lines.append(turn.t(f"候补 {len(waiting)} 人：", f"Waitlist ({len(waiting)}):"))
        lines += [f"{i}. {p.name}" for i, (_, p) in enumerate(waiting, 1)]
    text = "\n".join(lines)
    turn.say(text, text)


@router.command("newact")
async def new_activity(turn: Turn, _arg: str) -> None:
    orgs = await _managed(turn)
    if not orgs:
        deny(turn)
        return
    turn.state.data = {"org_ids": [o.id for o in orgs]}
    turn.ask(FLOW, "title", "发布新活动。请输入活动名称：", "New activity. What is its title?")


@router.step(FLOW, "title")
async def on_title(turn: Turn, text: str) -> None:
    if not 2 <= len(text) <= 60:
        turn.ask(FLOW, "title", "活动名称需要 2–60 个字，请重新输入：", "A title needs 2–60 characters:")
        return
    turn.set_data(title=text)
    turn.ask(FLOW, "description", "请简单介绍活动内容（不需要可回复「无」）：",
             "Describe the activity briefly (or reply \"none\"):")


@router.step(FLOW, "description")
async def on_description(turn: Turn, text: str) -> None:
    if len(text) > 1000:
        turn.ask(FLOW, "description", "介绍请控制在 1000 字以内：", "Please keep it under 1000 characters:")
        return
    turn.set_data(description="" if text.lower() in ("无", "無", "none", "-") else text)
    choices = [Choice(label=category_label(turn, c), value=f"a:{c}") for c in CATEGORIES]
    turn.ask(FLOW, "category", "请选择活动类别：", "Choose a category:", choices)


@router.step(FLOW, "category")
async def on_category(turn: Turn, text: str) -> None:
    code = text.removeprefix("a:")
    if code not in CATEGORIES:
        choices = [Choice(label=category_label(turn, c), value=f"a:{c}") for c in CATEGORIES]
        turn.ask(FLOW, "category", "请回复数字选择类别：", "Reply with the number of a category:", choices)
        return
    turn.set_data(category=code)
    turn.ask(FLOW, "place", "活动地点（如「花家地社区活动中心」）：", "Where does it take place?")


@router.step(FLOW, "place")
async def on_place(turn: Turn, text: str) -> None:
    if not 2 <= len(text) <= 120:
        turn.ask(FLOW, "place", "地点需要 2–120 个字：", "A place needs 2–120 characters:")
        return
    turn.set_data(place=text)
    turn.ask(FLOW, "coords", "如需按距离推荐，请发送坐标「纬度,经度」（如 39.98,116.47），或回复「跳过」：",
             "Send coordinates \"lat,lon\" (e.g. 39.98,116.47) so people nearby find it, or reply \"skip\":",
             [turn.choice("跳过", "Skip", "a:skip")])


@router.step(FLOW, "coords")
async def on_coords(turn: Turn, text: str) -> None:
    if text in ("a:skip", "跳过", "skip"):
        turn.set_data(latitude=None, longitude=None)
    else:
        try:
            lat, lon = parse_coordinates(text)
        except InvalidInput:
            turn.ask(FLOW, "coords", "坐标格式不对，应为「纬度,经度」，如 39.98,116.47；或回复「跳过」：",
                     "Coordinates look like 39.98,116.47; or reply \"skip\":", [turn.choice("跳过", "Skip", "a:skip")])
            return
        turn.set_data(latitude=lat, longitude=lon)
    turn.ask(FLOW, "start", "开始时间（如 2026-12-05 09:00 或 12月5日 9:00）：",
             "Start time (e.g. 2026-12-05 09:00):")


@router.step(FLOW, "start")
async def on_start(turn: Turn, text: str) -> None:
    try:
        start_local = parse_local_datetime(text, today=turn.today)
    except InvalidInput:
        turn.ask(FLOW, "start", "时间格式不对，请按「2026-12-05 09:00」的格式输入开始时间：",
                 "Please write the start like 2026-12-05 09:00:")
        return
    if turn.to_utc(start_local) <= turn.now:
        turn.ask(FLOW, "start", "开始时间已经过去了，请输入一个将来的时间：", "That time has passed; enter a future time:")
        return
    turn.set_data(start=start_local.isoformat())
    turn.ask(FLOW, "end", "结束时间（同一天可只写「11:30」）：", "End time (\"11:30\" for the same day):")


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
        turn.ask(FLOW, "end", "时间格式不对，请输入结束时间，如「11:30」或「2026-12-05 11:30」：",
                 "Please write the end like 11:30 or 2026-12-05 11:30:")
        return
    if end_local <= start_local or end_local - start_local > timedelta(days=7):
        turn.ask(FLOW, "end", "结束时间要晚于开始时间（且不超过 7 天），请重新输入：",
                 "The end must be after the start (and within 7 days):")
        return
    turn.set_data(end=end_local.isoformat())
    turn.ask(FLOW, "capacity", "需要多少名志愿者？（1–1000）", "How many volunteers are needed? (1–1000)")


@router.step(FLOW, "capacity")
async def on_capacity(turn: Turn, text: str) -> None:
    try:
        capacity = parse_positive_int(text, maximum=1000)
    except InvalidInput:
        turn.ask(FLOW, "capacity", "请输入 1–1000 之间的数字：", "Please enter a number from 1 to 1000:")
        return
    turn.set_data(capacity=capacity)
    org_ids: list[int] = turn.data["org_ids"]
    if len(org_ids) == 1:
        turn.set_data(organization_id=org_ids[0])
        await _confirm(turn)
        return
    orgs = [await turn.session.get(Organization, i) for i in org_ids]
    turn.ask(FLOW, "org", "由哪个组织发布？", "Which organization runs it?",
             [Choice(label=o.name, value=f"a:{o.id}") for o in orgs if o])


@router.step(FLOW, "org")
async def on_org(turn: Turn, text: str) -> None:
    value = text.removeprefix("a:")
    if not value.isdigit() or int(value) not in turn.data["org_ids"]:
        orgs = [await turn.session.get(Organization, i) for i in turn.data["org_ids"]]
        turn.ask(FLOW, "org", "请回复数字选择组织：", "Reply with the number of the organization:",
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
             [turn.choice("确认发布", "Publish", "a:yes"), turn.choice("放弃", "Discard", "a:no")])


@router.step(FLOW, "confirm")
async def on_confirm(turn: Turn, text: str) -> None:
    if text == "a:no":
        turn.end_flow()
        turn.say("已放弃，活动没有发布。", "Discarded; nothing was published.")
        return
    if text != "a:yes":
        turn.say("请回复 1 确认发布，或 2 放弃。", "Reply 1 to publish or 2 to discard.")
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
    turn.say(f"活动已发布（编号 {activity.id}）。", f"Published (activity #{activity.id}).",
             [turn.choice("查看活动", "View", f"act:{activity.id}")])


# ---- deep links and check-in -------------------------------------------------------------------
@router.command("start")
async def start_payload(turn: Turn, arg: str) -> None:
    """Deep-link payloads: act_<id>, checkin_<code>, checkout_<code> (Telegram /start, WeChat scenes)."""
    kind, _, value = arg.partition("_")
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
        turn.say("签到码无效。", "That check-in code is not valid.")
        return
    signup = (await turn.session.exec(select(Signup).where(
        Signup.activity_id == activity.id, Signup.person_id == turn.person.id, Signup.status == "confirmed"))).first()
    if signup is None:
        turn.say(f"你没有报名「{activity.title}」，无法签到。", f"You are not signed up for \"{activity.title}\".")
        return
    if turn.now < activity.start_at - timedelta(hours=2) or turn.now > activity.end_at + timedelta(hours=6):
        turn.say("现在不在这个活动的签到时间内。", "Check-in is not open for this activity right now.")
        return
    if action == "checkin":
        if signup.checkin_at is None:
            signup.checkin_at = turn.now
            turn.session.add(signup)
        turn.say(f"签到成功：「{activity.title}」，{turn.local(signup.checkin_at).strftime('%H:%M')}。",
                 f"Checked in to \"{activity.title}\" at {turn.local(signup.checkin_at).strftime('%H:%M')}.")
        return
    if signup.checkin_at is None:
        turn.say("你还没有签到，请先扫签到码。", "You haven't checked in yet.")
        return
    signup.checkout_at = turn.now
    turn.session.add(signup)
    worked = (min(turn.now, activity.end_at) - max(signup.checkin_at, activity.start_at)).total_seconds() / 3600
    hours = round(max(0.0, min(worked, activity_length_hours(activity))), 2)
    if hours <= 0:
        turn.say("已签退，本次没有可记录的服务时长。", "Checked out; no service time to record.")
        return
    try:
        await record_activity_hours(turn.session, activity=activity, person_id=turn.person.id, hours=hours,
                                    recorded_by=None, served_on=turn.local(activity.start_at).date(), now=turn.now,
                                    source="checkin")
    except HoursError:
        turn.say("已签退，但时长没能自动记录，请联系协调员。", "Checked out, but hours could not be recorded.")
        return
    turn.say(f"签退成功，本次记录服务时长 {hours:g} 小时。辛苦了！",
             f"Checked out: {hours:g} hours recorded. Thank you!")
