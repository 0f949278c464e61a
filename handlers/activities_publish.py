"""发布活动: a coordinator publishes an activity through one declarative flow (handlers/flows.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from common.i18n import Text, _
from common.taxonomy import CATEGORIES
from common.timeparse import When, parse_when
from common.timeparse import parse_end as read_end
from handlers.activities_common import category_name, deny, managed, router
from handlers.activity_payloads import OpenActivity
from handlers.activity_words import words
from handlers.flows import Field, Flow
from handlers.messages import Choice
from handlers.payloads import parse_int
from handlers.turn import WEEKDAY_NAMES, Role, Turn
from handlers.validation import InvalidInput, parse_coordinates, parse_positive_int
from models import ActivityBase
from services import activities as service
from services.people import PermissionDenied, require_manager

MAX_DAYS = 7


class ActivityDraft(BaseModel):
    org_ids: list[int] = []
    org_names: dict[str, str] = {}  # str(id) → name, for the choice and the summary
    title: str | None = None
    description: str | None = None
    category: str | None = None
    place: str | None = None
    coords: tuple[float, float] | None = None
    start: datetime | None = None  # naive, the deployment's local time
    end: datetime | None = None
    start_guess: bool = False  # the start's hour had no 上午/下午 and was guessed (3点 → 15:00)
    capacity: int | None = None
    organization_id: int | None = None


# ---- parsers -----------------------------------------------------------------------------------
def parse_title(_turn: Turn, text: str) -> str:
    if not 2 <= len(text) <= 60:
        raise InvalidInput("title")
    return text


def parse_description(_turn: Turn, text: str) -> str:
    if len(text) > 1000:
        raise InvalidInput("description")
    return "" if text.lower() in words("publish", "no_description") else text


def parse_category(_turn: Turn, text: str) -> str:
    if text not in CATEGORIES:
        raise InvalidInput("category")
    return text


def parse_place(_turn: Turn, text: str) -> str:
    if not 2 <= len(text) <= 120:
        raise InvalidInput("place")
    return text


def parse_coords(_turn: Turn, text: str) -> tuple[float, float]:
    return parse_coordinates(text)  # InvalidInput("coords_format")


def parse_start(turn: Turn, text: str) -> When:
    """「12月20日 下午2点半」, 「明天上午9点」, 「下周六 9:00-11:30」 (a range fills the end too), 「腊月廿三 14点」."""
    when = parse_when(text, now=turn.local(turn.now))
    if when is None:
        raise InvalidInput("datetime_format")
    if not when.has_time:
        raise InvalidInput("datetime_no_time")
    if turn.to_utc(when.start) <= turn.now:
        raise InvalidInput("start_past")
    if when.end is not None and when.end - when.start > timedelta(days=MAX_DAYS):
        raise InvalidInput("end_order")
    return when


def store_start(draft: ActivityDraft, value: When) -> None:
    draft.start = value.start
    draft.start_guess = value.ambiguous
    draft.end = value.end  # None: a new start asks for the end again (also when editing from the summary)


def confirm_start(turn: Turn, draft: ActivityDraft) -> Text:
    """The start as read, always shown back: 「2026-12-20（周日）14:30」 (with the end of a range)."""
    assert draft.start is not None
    start = draft.start
    day = _("{date}（{weekday}）", date=f"{start:%Y-%m-%d}", weekday=WEEKDAY_NAMES[start.weekday()])
    if draft.end is None:
        reading = _("{day}{time}", day=day, time=f"{start:%H:%M}")
    elif draft.end.date() == start.date():
        reading = _("{day}{start}–{end}", day=day, start=f"{start:%H:%M}", end=f"{draft.end:%H:%M}")
    else:
        reading = _("{day}{start} 至 {end}", day=day, start=f"{start:%H:%M}", end=f"{draft.end:%Y-%m-%d %H:%M}")
    if draft.start_guess:
        half = _("下午") if start.hour >= 12 else _("上午")
        return _("{reading}（没写上午还是下午，按{half}理解）", reading=reading, half=half)
    return reading


def parse_end(_turn: Turn, text: str, draft: ActivityDraft) -> datetime:
    """「11:30」, 「下午5点」, 「5点」 (after a 14:00 start: 17:00), or a full date and time."""
    assert draft.start is not None
    end = read_end(text, start=draft.start)
    if end is None:
        raise InvalidInput("end_order" if parse_when(text, now=draft.start) else "end_format")
    if end - draft.start > timedelta(days=MAX_DAYS):
        raise InvalidInput("end_order")
    return end


def parse_capacity(_turn: Turn, text: str) -> int:
    return parse_positive_int(text, maximum=1000)  # InvalidInput("number_format")


def parse_org(_turn: Turn, text: str, draft: ActivityDraft) -> int:
    org_id = parse_int(text)
    if org_id is None or org_id not in draft.org_ids:
        raise InvalidInput("org")
    return org_id


# ---- presentation ------------------------------------------------------------------------------
def category_choices(turn: Turn, _draft: ActivityDraft) -> list[Choice]:
    return [Choice(label=category_name(turn, code), value=f"a:{code}") for code in CATEGORIES]


def org_choices(_turn: Turn, draft: ActivityDraft) -> list[Choice]:
    return [Choice(label=draft.org_names.get(str(i), str(i)), value=f"a:{i}") for i in draft.org_ids]


def show_category(turn: Turn, draft: ActivityDraft) -> Text | None:
    return category_name(turn, draft.category) if draft.category else None


def show_when(turn: Turn, draft: ActivityDraft) -> Text | None:
    if draft.start is None or draft.end is None:
        return None
    return turn.fmt_span(turn.to_utc(draft.start), turn.to_utc(draft.end))


def show_org(_turn: Turn, draft: ActivityDraft) -> Text | None:
    return draft.org_names.get(str(draft.organization_id)) if draft.organization_id is not None else None


# ---- publishing --------------------------------------------------------------------------------
async def publish(turn: Turn, draft: ActivityDraft) -> None:
    assert draft.organization_id is not None and draft.start is not None and draft.end is not None
    # the role is checked again at the moment of writing, not only when the dialog began
    try:
        await require_manager(turn.session, person_id=turn.person.id, admin=await turn.admin(),
                              organization_id=draft.organization_id)
    except PermissionDenied:
        deny(turn)
        return
    latitude, longitude = draft.coords if draft.coords is not None else (None, None)
    data = ActivityBase(
        title=draft.title or "", description=draft.description or "", category=draft.category or "other",
        place=draft.place or "", latitude=latitude, longitude=longitude,
        start_at=turn.to_utc(draft.start), end_at=turn.to_utc(draft.end),
        capacity=draft.capacity or 1, organization_id=draft.organization_id,
    )
    activity = await service.create_activity(turn.session, data=data, created_by=turn.person.id, now=turn.now)
    turn.say(_("活动已发布（编号 {id}）。", id=activity.id),
             [turn.choice(_("查看活动"), OpenActivity(activity.id).pack())])


FLOW = Flow(
    "newact",
    ActivityDraft,
    [
        Field("title", _("发布新活动。请输入活动名称："), parse_title, label=_("名称")),
        Field("description", _("请简单介绍活动内容（不需要可回复「无」）："), parse_description),
        Field("category", _("请选择活动类别："), parse_category, label=_("类别"), show=show_category,
              choices=category_choices),
        Field("place", _("活动地点（如「花家地社区活动中心」）："), parse_place, label=_("地点")),
        Field("coords", _("如需按距离推荐，请发送坐标「纬度,经度」（如 39.98,116.47），或回复「跳过」："), parse_coords,
              optional=True),
        Field("start", _("开始时间（如「12月20日 下午2点半」「下周六上午9点到11点」「2026-12-05 09:00」）："),
              parse_start, label=_("时间"), show=show_when, store=store_start, confirm=confirm_start),
        Field("end", _("结束时间（同一天可只写「11:30」或「下午5点」）："), parse_end,
              when=lambda draft: draft.end is None),
        Field("capacity", _("需要多少名志愿者？（1–1000）"), parse_capacity, label=_("名额")),
        Field("organization_id", _("由哪个组织发布？"), parse_org, label=_("组织"), show=show_org,
              choices=org_choices, when=lambda draft: len(draft.org_ids) > 1),
    ],
    done=publish,
    requires=Role.COORDINATOR,
    title=_("请确认活动信息："),
    confirm_label=_("确认发布"),
    errors={
        "title": _("活动名称需要 2–60 个字，请重新输入："),
        "description": _("介绍请控制在 1000 字以内："),
        "category": _("请回复数字选择类别："),
        "place": _("地点需要 2–120 个字："),
        "coords_format": _("坐标格式不对，应为「纬度,经度」，如 39.98,116.47；或回复「跳过」："),
        "datetime_format": _("没看懂这个时间，请写日期和钟点，如「12月20日 下午2点半」或「2026-12-05 09:00」："),
        "datetime_no_time": _("几点开始呢？请把日期和钟点一起写，如「12月20日 下午2点半」："),
        "start_past": _("开始时间已经过去了，请输入一个将来的时间："),
        "end_format": _("没看懂这个时间，请输入结束时间，如「11:30」「下午5点」或「2026-12-05 11:30」："),
        "end_order": _("结束时间要晚于开始时间（且不超过 7 天），请重新输入："),
        "number_format": _("请输入 1–1000 之间的数字："),
        "org": _("请回复数字选择组织："),
    },
)
FLOW.register(router)


@router.command("newact", words=words("activities", "newact"), requires=Role.COORDINATOR)
async def new_activity(turn: Turn, _arg: str) -> None:
    orgs = [o for o in await managed(turn) if o.id is not None]
    if not orgs:
        deny(turn)
        return
    draft = ActivityDraft(org_ids=[o.id for o in orgs], org_names={str(o.id): o.name for o in orgs},
                          organization_id=orgs[0].id if len(orgs) == 1 else None)
    await FLOW.start(turn, draft)
