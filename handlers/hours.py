"""Service hours: a volunteer's summary and star level; coordinators record hours (台账)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from common.i18n import _
from handlers.messages import Choice
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput, parse_hours
from models import Activity, Person
from services.hours import (
    STAR_THRESHOLDS,
    HoursError,
    activity_length_hours,
    attendees_without_hours,
    hours_summary,
    record_activity_hours,
)
from services.people import PermissionDenied, managed_organizations, require_manager

router = FeatureRouter("hours")
FLOW = "rec"


@router.command("hrs")
async def my_hours(turn: Turn, _arg: str) -> None:
    summary = await hours_summary(turn.session, person_id=turn.person.id, year=turn.today.year)
    stars = "★" * summary.stars if summary.stars else turn.t(_("暂无星级"))
    if summary.to_next_star is None:
        next_zh, next_en = "你已是最高的五星志愿者！", "You are a five-star volunteer, the highest level!"
    else:
        target = STAR_THRESHOLDS[summary.stars]
        next_zh = f"距离{summary.stars + 1}星（{target} 小时）还差 {summary.to_next_star:g} 小时。"
        next_en = f"{summary.to_next_star:g} more hours to {summary.stars + 1} star(s) ({target} h)."
    lines_zh = [f"累计志愿服务时长：{summary.total:g} 小时", f"今年：{summary.this_year:g} 小时",
                f"星级：{stars}", next_zh]
    lines_en = [f"Total service hours: {summary.total:g}", f"This year: {summary.this_year:g}",
                f"Star level: {stars}", next_en]
    if summary.recent:
        lines_zh.append("最近记录：")
        lines_en.append("Recent records:")
        for record, title, recorder in summary.recent:
            what = title or record.note or turn.t(_("志愿服务"))
            who = recorder or (turn.t(_("签到签退")) if record.source == "checkin" else "-")
            lines_zh.append(f"· {record.served_on:%Y-%m-%d} {what} {record.hours:g} 小时（记录人：{who}）")
            lines_en.append(f"· {record.served_on:%Y-%m-%d} {what} {record.hours:g} h (recorded by {who})")
    elif turn.person.status != "active":
        lines_zh.append("你还没有注册志愿者，注册后参加活动即可累计时长。")
        lines_en.append("Register as a volunteer and join activities to build up hours.")
    else:
        lines_zh.append("还没有服务记录，报名一个活动开始吧！")
        lines_en.append("No records yet: join an activity to get started!")
    turn.say("\n".join(lines_zh), "\n".join(lines_en), [turn.choice(_("看看活动"), "acts:1")])



def _deny(turn: Turn) -> None:
    turn.say(_("抱歉，只有该组织的协调员或管理员可以记录时长。"))


@router.command("rec")
async def record_menu(turn: Turn, arg: str) -> None:
    if arg.isdigit():
        await _activity_menu(turn, int(arg))
        return
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=await turn.admin())
    if not orgs:
        _deny(turn)
        return
    rows = await turn.session.exec(
        select(Activity)
        .where(col(Activity.organization_id).in_([o.id for o in orgs]), Activity.start_at <= turn.now,
               Activity.start_at >= turn.now - timedelta(days=60), Activity.status == "open")
        .order_by(col(Activity.start_at).desc()).limit(10)
    )
    activities = list(rows)
    if not activities:
        turn.say(_("最近 60 天没有已开始的活动需要记录时长。"))
        return
    lines = [turn.t(_("为哪个活动记录时长？"))]
    lines += [f"{i}. {a.title} {turn.fmt_dt(a.start_at)}" for i, a in enumerate(activities, 1)]
    text = "\n".join(lines)
    turn.say(text, [Choice(label=a.title[:30], value=f"rec:{a.id}") for a in activities])


async def _activity_menu(turn: Turn, activity_id: int) -> None:
    activity = await turn.session.get(Activity, activity_id)
    if activity is None:
        turn.say(_("找不到这个活动。"))
        return
    try:
        await require_manager(turn.session, person_id=turn.person.id, admin=await turn.admin(),
                              organization_id=activity.organization_id)
    except PermissionDenied:
        _deny(turn)
        return
    if activity.start_at > turn.now:
        turn.say(_("活动还没开始，开始后才能记录时长。"))
        return
    pending = await attendees_without_hours(turn.session, activity_id=activity_id)
    length = activity_length_hours(activity)
    if not pending:
        turn.end_flow()
        turn.say(_("「{title}」的参加者都已记录时长。", title=activity.title))
        return
    turn.state.data = {"activity_id": activity_id}
    names = "、".join(p.name or "?" for p in pending)
    choices = [turn.choice(_("全部记 {length} 小时", length=f'{length:g}'), "a:all")]
    choices += [Choice(label=p.name or "?", value=f"a:p:{p.id}") for p in pending]
    turn.ask(FLOW, "menu",
             _("「{title}」待记录 {count} 人：{names}\n活动时长 {length} 小时。可以全部按活动时长记录，或逐个记录；也可以直接回复一个数字作为所有人的时长（如 2.5）。", title=activity.title, count=len(pending), names=names, length=f'{length:g}'),
             choices)


async def _record(turn: Turn, activity: Activity, people: list[Person], hours: float) -> None:
    try:
        for person in people:
            await record_activity_hours(turn.session, activity=activity, person_id=person.id, hours=hours,
                                        recorded_by=turn.person.id, served_on=turn.local(activity.start_at).date(),
                                        now=turn.now)
    except HoursError as error:
        if error.reason == "over_length":
            turn.say(_("时长不能超过活动时长 {limit} 小时，请重新输入。", limit=f"{error.params['limit']:g}"))
        else:
            turn.say(_("只能为已报名的参加者记录时长。"))
        raise
    names = "、".join(p.name or "?" for p in people)
    turn.say(_("已为 {names} 记录 {hours} 小时。", names=names, hours=f'{hours:g}'))


@router.step(FLOW, "menu")
async def on_menu(turn: Turn, text: str) -> None:
    activity = await turn.session.get(Activity, turn.data["activity_id"])
    assert activity is not None
    pending = await attendees_without_hours(turn.session, activity_id=activity.id)
    if text.startswith("a:p:"):
        person = next((p for p in pending if str(p.id) == text.removeprefix("a:p:")), None)
        if person is None:
            await _activity_menu(turn, activity.id)
            return
        turn.set_data(person_id=person.id)
        turn.ask(FLOW, "one", _("为 {name} 记录多少小时？（不超过 {value}）", name=person.name, value=f'{activity_length_hours(activity):g}'))
        return
    if text == "a:all":
        hours = activity_length_hours(activity)
    else:
        try:
            hours = parse_hours(text)
        except InvalidInput:
            turn.say(_("请回复时长数字（如 2 或 2.5），或选择上面的选项。"))
            await _activity_menu(turn, activity.id)
            return
    try:
        await _record(turn, activity, pending, hours)
    except HoursError:
        await _activity_menu(turn, activity.id)
        return
    turn.end_flow()


@router.step(FLOW, "one")
async def on_one(turn: Turn, text: str) -> None:
    activity = await turn.session.get(Activity, turn.data["activity_id"])
    person = await turn.session.get(Person, turn.data["person_id"])
    assert activity is not None and person is not None
    try:
        hours = parse_hours(text)
        await _record(turn, activity, [person], hours)
    except InvalidInput:
        turn.ask(FLOW, "one", _("请输入数字，如 2 或 2.5："))
        return
    except HoursError:
        turn.ask(FLOW, "one", _("请重新输入时长："))
        return
    await _activity_menu(turn, activity.id)
