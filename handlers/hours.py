"""Service hours: a volunteer's summary and star level; coordinators record hours (台账).

Recording stays two small steps rather than a declarative Flow: after each attendee it loops
back to the menu of those still without hours, which a Flow's one-pass field list does not model.
"""

from __future__ import annotations

from common.i18n import Text, _, join
from handlers.activity_payloads import ActivityPage, RecordHours, optional
from handlers.activity_words import list_of_names, words
from handlers.messages import Choice
from handlers.payloads import InvalidPayload, Payload, payload
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput, parse_hours
from models import Activity, Person
from services.hours import (
    STAR_THRESHOLDS,
    HoursError,
    activity_length_hours,
    attendees_without_hours,
    hours_summary,
    recent_started_activities,
    record_hours_for,
)
from services.people import PermissionDenied, managed_organizations, require_manager

router = FeatureRouter("hours")
FLOW = "rec"


@payload("p")
class PickAttendee(Payload):  # answers the menu step: "a:p:<person id>"
    person_id: int


@router.command("hrs", words=words("hours", "hrs"))
async def my_hours(turn: Turn, _arg: str) -> None:
    summary = await hours_summary(turn.session, person_id=turn.person.id, year=turn.today.year)
    stars = "★" * summary.stars if summary.stars else _("暂无星级")
    if summary.to_next_star is None:
        next_star: Text = _("你已是最高的五星志愿者！")
    else:
        next_star = _("距离{stars}星（{target} 小时）还差 {hours} 小时。", stars=summary.stars + 1,
                      target=STAR_THRESHOLDS[summary.stars], hours=f"{summary.to_next_star:g}")
    rows: list[Text] = [_("累计志愿服务时长：{hours} 小时", hours=f"{summary.total:g}"),
                        _("今年：{hours} 小时", hours=f"{summary.this_year:g}"),
                        _("星级：{stars}", stars=stars), next_star]
    if summary.recent:
        rows.append(_("最近记录："))
        for record, title, recorder in summary.recent:
            what = title or record.note or _("志愿服务")
            who = recorder or (_("签到签退") if record.source == "checkin" else "-")
            rows.append(_("· {date} {what} {hours} 小时（记录人：{who}）", date=f"{record.served_on:%Y-%m-%d}",
                          what=what, hours=f"{record.hours:g}", who=who))
    elif turn.person.status != "active":
        rows.append(_("你还没有注册志愿者，注册后参加活动即可累计时长。"))
    else:
        rows.append(_("还没有服务记录，报名一个活动开始吧！"))
    turn.say(join(rows), [turn.choice(_("看看活动"), ActivityPage(1).pack())])


def _deny(turn: Turn) -> None:
    turn.say(_("抱歉，只有该组织的协调员或管理员可以记录时长。"))


@router.command("rec", words=words("hours", "rec"), requires=Role.COORDINATOR)
async def record_menu(turn: Turn, arg: str) -> None:
    try:
        target = optional(RecordHours, arg)
    except InvalidPayload:
        target = None
    if target is not None:
        await _activity_menu(turn, target.activity_id)
        return
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=await turn.admin())
    if not orgs:
        _deny(turn)
        return
    activities = await recent_started_activities(turn.session, organization_ids=[o.id for o in orgs if o.id],
                                                 now=turn.now)
    if not activities:
        turn.say(_("最近 60 天没有已开始的活动需要记录时长。"))
        return
    rows: list[Text] = [_("为哪个活动记录时长？")]
    rows += [f"{i}. {a.title} {turn.fmt_dt(a.start_at)}" for i, a in enumerate(activities, 1)]
    turn.say(join(rows), [Choice(label=a.title[:30], value=RecordHours(a.id).pack()) for a in activities])


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
    length = f"{activity_length_hours(activity):g}"
    if not pending:
        turn.end_flow()
        turn.say(_("「{title}」的参加者都已记录时长。", title=activity.title))
        return
    turn.state.data = {"activity_id": activity_id}
    choices = [turn.choice(_("全部记 {length} 小时", length=length), "a:all")]
    choices += [Choice(label=p.name or "?", value="a:" + PickAttendee(p.id).pack()) for p in pending]
    turn.ask(FLOW, "menu",
             _("「{title}」待记录 {count} 人：{names}\n活动时长 {length} 小时。可以全部按活动时长记录，或逐个记录；"
               "也可以直接回复一个数字作为所有人的时长（如 2.5）。", title=activity.title, count=len(pending),
               names=list_of_names([p.name or "?" for p in pending]), length=length),
             choices)


async def _record(turn: Turn, activity: Activity, people: list[Person], hours: float) -> None:
    try:
        await record_hours_for(turn.session, activity=activity, person_ids=[p.id for p in people], hours=hours,
                               recorded_by=turn.person.id, served_on=turn.local(activity.start_at).date(),
                               now=turn.now)
    except HoursError as error:
        if error.reason == "over_length":
            turn.say(_("时长不能超过活动时长 {limit} 小时，请重新输入。", limit=f"{error.params['limit']:g}"))
        else:
            turn.say(_("只能为已报名的参加者记录时长。"))
        raise
    turn.say(_("已为 {names} 记录 {hours} 小时。", names=list_of_names([p.name or "?" for p in people]),
               hours=f"{hours:g}"))


@router.step(FLOW, "menu")
async def on_menu(turn: Turn, text: str) -> None:
    activity = await turn.session.get(Activity, turn.data["activity_id"])
    assert activity is not None
    pending = await attendees_without_hours(turn.session, activity_id=activity.id)
    if text.startswith("a:" + PickAttendee.prefix + ":"):
        try:
            picked = PickAttendee.unpack(text.removeprefix("a:"))
        except InvalidPayload:
            picked = None
        person = next((p for p in pending if picked is not None and p.id == picked.person_id), None)
        if person is None:
            await _activity_menu(turn, activity.id)
            return
        turn.set_data(person_id=person.id)
        turn.ask(FLOW, "one", _("为 {name} 记录多少小时？（不超过 {value}）", name=person.name,
                                value=f"{activity_length_hours(activity):g}"))
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
