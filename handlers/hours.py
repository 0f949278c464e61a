"""Service hours: a volunteer's summary and star level; coordinators record hours (台账).

Recording is a flow of two fields (who, then how long when one person was picked); after one
attendee the flow starts again with those still without hours.
"""

from __future__ import annotations

from pydantic import BaseModel

from common.i18n import Text, _, join
from handlers.activity_payloads import ActivityPage, RecordHours, optional
from handlers.activity_words import list_of_names, words
from handlers.flows import Field, Flow
from handlers.hours_questions import exact_answers
from handlers.messages import Choice
from handlers.payloads import InvalidPayload, Payload, payload
from handlers.permissions import ORG_DENIED
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput, parse_hours
from models import Activity
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


@payload("p")
class PickAttendee(Payload):  # answers the menu step: "a:p:<person id>"
    person_id: int


@router.command("hrs", words=words("hours", "hrs"))
async def my_hours(turn: Turn, question: str) -> None:
    """The hours summary; a question that names a star level, a period or an activity gets that figure first."""
    summary = await hours_summary(turn.reads, person_id=turn.person.id, year=turn.today.year)
    exact = await exact_answers(turn, question, summary.total) if question else []
    stars = "★" * summary.stars if summary.stars else _("暂无星级")
    if summary.to_next_star is None:
        next_star: Text = _("你已是最高的五星志愿者！")
    else:
        next_star = _("距离{stars}星（{target} 小时）还差 {hours} 小时。", stars=summary.stars + 1,
                      target=STAR_THRESHOLDS[summary.stars], hours=f"{summary.to_next_star:g}")
    rows: list[Text] = [*exact, _("累计志愿服务时长：{hours} 小时", hours=f"{summary.total:g}"),
                        _("今年：{hours} 小时", hours=f"{summary.this_year:g}"),
                        _("星级：{stars}", stars=stars), next_star]
    if summary.pending:
        rows.append(_("待审核：{hours} 小时（协调员审核通过后计入）", hours=f"{summary.pending:g}"))
    if summary.recent:
        rows.append(_("最近记录："))
        for record in summary.recent:
            what = record.title or record.note or _("志愿服务")
            # a coordinator who never registered has no name: say who they are rather than "-"
            who = record.recorder or (_("签到签退") if record.source == "checkin"
                                      else _("本组织协调员") if record.recorded_by is not None else "-")
            rows.append(_("· {date} {what} {hours} 小时（记录人：{who}）", date=f"{record.served_on:%Y-%m-%d}",
                          what=what, hours=f"{record.hours:g}", who=who))
    elif summary.pending:
        pass  # the pending line above says it
    elif turn.person.status != "active":
        rows.append(_("你还没有注册志愿者，注册后参加活动即可累计时长。"))
    else:
        rows.append(_("还没有服务记录，报名一个活动开始吧！"))
    choices = [turn.choice(_("看看活动"), ActivityPage(1).pack())]
    if summary.recent:  # 办法 Art 13: the records, each with 申请更正
        choices.append(turn.choice(_("我的记录"), "records"))
    turn.say(join(rows), choices)


def _deny(turn: Turn) -> None:
    turn.say(ORG_DENIED)


def day_limit_text(error: HoursError) -> Text:
    """The refusal of hours past 24 on one day (coordinators' records and self-reports alike)."""
    return _("{day} 已有 {already} 小时的记录，一天最多 24 小时，最多还能记 {left} 小时。",
             day=error.params["day"], already=f"{error.params['already']:g}", left=f"{error.params['left']:g}")


def recording_refusal(error: HoursError) -> Text:
    """Why a coordinator's hours for attendees were not recorded (the chat and the web console say the same).
    ``not_manager`` is the caller's to handle (it denies rather than explains)."""
    if error.reason == "day_limit":
        return day_limit_text(error)
    if error.reason == "over_length":
        return _("时长不能超过活动时长 {limit} 小时，请重新输入。", limit=f"{error.params['limit']:g}")
    if error.reason == "corrected":
        return _("{name} 这次活动的时长已申请或完成更正，记录不能再直接改写；请用「更正时长」处理。",
                 name=error.params["name"])
    return _("只能为已报名的参加者记录时长。")


# ---- recording (记录时长): a flow per round; after one attendee it starts again with those left ----
class RecordDraft(BaseModel):
    activity_id: int = 0
    title: str = ""
    length: float = 0
    pending: list[tuple[int, str]] = []  # (person id, name) still without hours
    who: int | None = None  # a person id; 0 = everyone still pending
    hours: float | None = None


def _menu_prompt(_turn: Turn, draft: RecordDraft) -> Text:
    return _("「{title}」待记录 {count} 人：{names}\n活动时长 {length} 小时。可以全部按活动时长记录，或逐个记录；"
             "也可以直接回复一个时长作为所有人的时长（如 2.5 或「两个小时」）。", title=draft.title, count=len(draft.pending),
             names=list_of_names([name for _id, name in draft.pending]), length=f"{draft.length:g}")


def _menu_choices(turn: Turn, draft: RecordDraft) -> list[Choice]:
    choices = [turn.choice(_("全部记 {length} 小时", length=f"{draft.length:g}"), "a:all")]
    return choices + [Choice(label=name, value="a:" + PickAttendee(person_id).pack()) for person_id, name in draft.pending]


def parse_who(_turn: Turn, text: str, draft: RecordDraft) -> tuple[int, float | None]:
    """Everyone at the activity's length, everyone at a typed number of hours, or one person."""
    if text == "all":
        return 0, draft.length
    if text.startswith(PickAttendee.prefix + ":"):
        try:
            picked = PickAttendee.unpack(text).person_id
        except InvalidPayload:
            picked = None
        if any(person_id == picked for person_id, _name in draft.pending):
            return picked, None  # type: ignore[return-value]
        raise InvalidInput("who")
    try:
        return 0, _capped_hours(parse_hours(text), draft)
    except InvalidInput as error:
        raise InvalidInput("who" if error.key == "hours_format" else error.key) from error


def _capped_hours(hours: float, draft: RecordDraft) -> float:
    if hours > draft.length:
        raise InvalidInput("over_length")
    return hours


def parse_one(_turn: Turn, text: str, draft: RecordDraft) -> float:
    return _capped_hours(parse_hours(text), draft)


def _store_who(draft: RecordDraft, value: tuple[int, float | None]) -> None:
    draft.who, draft.hours = value


def _one_prompt(_turn: Turn, draft: RecordDraft) -> Text:
    name = next(name for person_id, name in draft.pending if person_id == draft.who)
    return _("为 {name} 记录多少小时？（不超过 {value}）", name=name, value=f"{draft.length:g}")


async def save_hours(turn: Turn, draft: RecordDraft) -> None:
    activity = await turn.session.get(Activity, draft.activity_id)
    assert activity is not None and draft.hours is not None
    everyone = draft.who == 0
    ids = [person_id for person_id, _name in draft.pending] if everyone else [draft.who]
    try:
        await record_hours_for(turn.session, activity=activity, person_ids=ids, hours=draft.hours,
                               recorded_by=turn.person.id, served_on=turn.local(activity.start_at).date(),
                               now=turn.now, admin=await turn.admin())
    except HoursError as error:
        if error.reason == "not_manager":  # the role was lost since the dialog began: nothing written
            _deny(turn)
            return
        turn.say(recording_refusal(error))
        await _activity_menu(turn, activity.id)
        return
    names = [name for person_id, name in draft.pending if person_id in ids]
    turn.say(_("已为 {names} 记录 {hours} 小时。", names=list_of_names(names), hours=f"{draft.hours:g}"))
    if not everyone:  # back to those still without hours
        await _activity_menu(turn, activity.id)


RECORD = Flow("rec", RecordDraft, [
    Field("who", _menu_prompt, parse_who, choices=_menu_choices, store=_store_who),
    Field("hours", _one_prompt, parse_one, when=lambda d: d.hours is None),
], requires=Role.COORDINATOR, done=save_hours, confirm=False, errors={
    "who": _("请回复时长（如 2、2.5 或「两个半小时」），或选择上面的选项。"),
    "hours_format": _("请回复小时数，如 2、2.5 或「两个半小时」："),
    "over_length": lambda _turn, draft: _("时长不能超过活动时长 {limit} 小时，请重新输入。", limit=f"{draft.length:g}"),
})
RECORD.register(router)


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
    if not pending:
        turn.end_flow()
        turn.say(_("「{title}」的参加者都已记录时长。", title=activity.title))
        return
    assert activity.id is not None
    await RECORD.start(turn, RecordDraft(activity_id=activity.id, title=activity.title,
                                         length=activity_length_hours(activity),
                                         pending=[(p.id, p.name or "?") for p in pending if p.id is not None]))
