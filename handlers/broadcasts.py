"""Coordinators' broadcasts: write a call, pick who gets it, see the count, confirm; ask for progress."""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel import col, select

from common.i18n import Text, _, lines
from handlers.flows import Again, Field, Flow
from handlers.messages import Choice
from handlers.payloads import InvalidPayload, Payload, parse_int, payload
from handlers.permissions import DENIED
from handlers.reminder_words import words
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput
from models import Activity, Organization
from services import broadcasts as service
from services.orgs import descendant_ids
from services.people import PermissionDenied, managed_organizations, require_manager
from services.registration import SKILLS, skill_text

router = FeatureRouter("broadcasts")


TARGETS = {"org": _("本组织全体志愿者"), "skill": _("有某项技能的志愿者"),
           "area": _("某个社区/地区的志愿者"), "activity": _("某个活动的报名者")}
ERRORS: dict[str, Text] = {
    # service.BroadcastError reasons
    "empty": _("通知内容不能为空。"),
    "too_long": _("通知请控制在 {max_text} 字以内。", max_text=service.MAX_TEXT),
    "activity_not_in_org": _("只能选择本组织的活动。"),
    "bad_target": _("请重新选择发送对象。"),
    "no_org": _("找不到这个组织。"),
    # answers the dialog cannot take
    "org": _("请回复数字选择组织："),
    "text_length": _("通知内容需要 2–{max_text} 个字，请重新输入：", max_text=service.MAX_TEXT),
    "target": _("请回复数字选择发送对象："),
    "no_activities": _("本组织近期没有活动。请选择其他发送对象："),
    "skill": _("请回复数字选择技能："),
    "area": _("请输入社区或地区名称："),
}
MAX_AREA = 60


@payload("bcs")
class BroadcastProgress(Payload):
    broadcast_id: int


class BroadcastDraft(BaseModel):
    orgs: list[tuple[int, str]] = []  # the organizations the author manages: (id, name)
    org_id: int | None = None
    org_name: str = ""
    text: str | None = None
    kind: str | None = None  # a TARGETS key
    value: str | None = None  # skill code / area / activity id; None for the whole organization
    activities: list[tuple[int, str]] = []  # (id, label) offered when kind is "activity"
    people: int = 0  # the count shown before sending
    messages: int = 0


async def _orgs(turn: Turn) -> list[Organization]:
    admin = await turn.admin()
    return await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)


def _deny(turn: Turn) -> None:
    turn.say(DENIED)


def _skill(code: str) -> Text:
    return skill_text(code)


def describe(kind: str | None, value: str | None) -> Text:
    if kind == "skill":
        return _("技能：{skill}", skill=_skill(value or ""))
    if kind == "area":
        return _("地区：{value}", value=value or "")
    if kind == "activity":
        return _("活动 #{value} 的报名者", value=value or "")
    return _("本组织全体志愿者")


# ---- the dialog's fields ---------------------------------------------------------------------
def org_choices(turn: Turn, draft: BroadcastDraft) -> list[Choice]:
    return [Choice(label=name, value=f"a:{org_id}") for org_id, name in draft.orgs[:20]]


def parse_org(_turn: Turn, text: str, draft: BroadcastDraft) -> int:
    names = dict(draft.orgs)
    org_id = parse_int(text)
    if org_id is None or org_id not in names:
        raise InvalidInput("org")
    draft.org_name = names[org_id]
    return org_id


def text_prompt(_turn: Turn, draft: BroadcastDraft) -> Text:
    return _("群发通知（{org_name}）。请输入通知内容，例如「3.12 植树节 需要 20 名志愿者，上午 9 点集合」：",
             org_name=draft.org_name)


def parse_text(_turn: Turn, text: str) -> str:
    body = text.strip()
    if not 2 <= len(body) <= service.MAX_TEXT:
        raise InvalidInput("text_length")
    return body


def target_choices(turn: Turn, _draft: BroadcastDraft) -> list[Choice]:
    return [turn.choice(label, f"a:{kind}") for kind, label in TARGETS.items()]


async def _count(turn: Turn, draft: BroadcastDraft) -> None:
    """The audience of the chosen target onto the draft; nobody there asks for another target."""
    assert draft.org_id is not None and draft.kind is not None
    try:
        audience = await service.count_audience(turn.session, organization_id=draft.org_id, kind=draft.kind,
                                                value=draft.value or "")
    except service.BroadcastError as error:
        raise InvalidInput(error.reason if error.reason in ERRORS else "bad_target") from None
    if audience.people == 0:
        turn.say(_("「{who}」目前没有可以接收通知的志愿者。请选择其他发送对象：", who=describe(draft.kind, draft.value)))
        raise Again
    draft.people, draft.messages = audience.people, audience.messages


async def parse_target(turn: Turn, text: str, draft: BroadcastDraft) -> str:
    if text not in TARGETS:
        raise InvalidInput("target")
    draft.kind, draft.value, draft.activities = text, None, []
    if text == "activity":
        activities = await turn.session.exec(
            select(Activity).where(col(Activity.organization_id).in_(
                await descendant_ids(turn.session, organization_id=draft.org_id)), Activity.status == "open",
                                   Activity.end_at > turn.days_ago(30))
            .order_by(col(Activity.start_at).desc()).limit(10))
        draft.activities = [(a.id, f"{a.title[:24]} {turn.local(a.start_at):%m-%d}") for a in activities
                            if a.id is not None]
        if not draft.activities:
            raise InvalidInput("no_activities")
    if text == "org":
        await _count(turn, draft)
    return text


def show_target(_turn: Turn, draft: BroadcastDraft) -> Text:
    return describe(draft.kind, draft.value)


def value_prompt(_turn: Turn, draft: BroadcastDraft) -> Text:
    if draft.kind == "skill":
        return _("选择技能：")
    if draft.kind == "activity":
        return _("选择活动：")
    return _("输入社区或地区名称（如「花家地」）：")


def value_choices(turn: Turn, draft: BroadcastDraft) -> list[Choice]:
    if draft.kind == "skill":
        return [Choice(label=turn.text(_skill(s.code)), value=f"a:{s.code}") for s in SKILLS]
    if draft.kind == "activity":
        return [Choice(label=label, value=f"a:{activity_id}") for activity_id, label in draft.activities]
    return []


async def parse_value(turn: Turn, text: str, draft: BroadcastDraft) -> str:
    value = text.strip()
    if draft.kind == "skill" and value not in {s.code for s in SKILLS}:
        raise InvalidInput("skill")
    if draft.kind == "area" and not 1 <= len(value) <= MAX_AREA:
        raise InvalidInput("area")
    if draft.kind == "activity" and parse_int(value) is None:
        raise InvalidInput("bad_target")
    draft.value = value
    await _count(turn, draft)
    return value


async def send(turn: Turn, draft: BroadcastDraft) -> None:
    assert draft.org_id is not None and draft.kind is not None and draft.text is not None
    admin = await turn.admin()
    try:  # the role is checked again at the moment of sending
        await require_manager(turn.session, person_id=turn.person.id, admin=admin, organization_id=draft.org_id)
        broadcast = await service.queue_broadcast(turn.session, author_id=turn.person.id,
                                                  organization_id=draft.org_id, kind=draft.kind,
                                                  value=draft.value or "", text=draft.text, now=turn.now)
    except PermissionDenied:
        _deny(turn)
        return
    except service.BroadcastError as error:
        turn.say(ERRORS.get(error.reason, ERRORS["bad_target"]))
        return
    assert broadcast.id is not None
    turn.say(_("已排队发送给 {recipients} 名志愿者（{queued} 条消息，编号 {id}）。夜间（21:30–08:00）会等到早上再发。"
               "回复「群发进度」查看发送情况。", recipients=broadcast.recipients, queued=broadcast.queued,
               id=broadcast.id),
             [turn.choice(_("查看进度"), BroadcastProgress(broadcast.id).pack())])


flow = Flow("bc", BroadcastDraft, [
    Field("org_id", _("给哪个组织的志愿者发通知？"), parse=parse_org, choices=org_choices,
          when=lambda d: len(d.orgs) > 1),
    Field("text", text_prompt, parse=parse_text, label=_("通知内容")),
    Field("kind", _("发给谁？"), parse=parse_target, choices=target_choices, label=_("发送对象"),
          show=show_target),
    Field("value", value_prompt, parse=parse_value, choices=value_choices,
          when=lambda d: d.kind not in (None, "org")),
], requires=Role.COORDINATOR, done=send, errors=ERRORS, confirm_label=_("确认发送"),
    title=lambda _turn, d: _("请确认群发（共 {people} 名志愿者，{messages} 条消息）：", people=d.people,
                             messages=d.messages))
flow.register(router)


# ---- commands --------------------------------------------------------------------------------
@router.command("bc", "broadcast", words=words("broadcasts")["compose"], requires=Role.COORDINATOR)
async def start_broadcast(turn: Turn, _arg: str) -> None:
    orgs = [(o.id, o.name) for o in await _orgs(turn) if o.id is not None]
    if not orgs:
        _deny(turn)
        return
    draft = BroadcastDraft(orgs=orgs)
    if len(orgs) == 1:
        draft.org_id, draft.org_name = orgs[0]
    await flow.start(turn, draft)


@router.command("bcs", words=words("broadcasts")["progress"], requires=Role.COORDINATOR)
async def broadcast_progress(turn: Turn, arg: str) -> None:
    orgs = await _orgs(turn)
    if not orgs:
        _deny(turn)
        return
    org_ids = [o.id for o in orgs if o.id is not None]
    items = await service.recent_broadcasts(turn.session, organization_ids=org_ids, limit=5)
    try:
        wanted = BroadcastProgress.from_arg(arg).broadcast_id if arg else None
    except InvalidPayload:
        wanted = None  # an unreadable id: the recent ones
    if wanted is not None:
        items = [b for b in items if b.id == wanted] or [
            b for b in await service.recent_broadcasts(turn.session, organization_ids=org_ids, limit=200)
            if b.id == wanted]
    if not items:
        turn.say(_("还没有群发记录。"), [turn.choice(_("群发通知"), "bc")])
        return
    rows: list[Text] = [_("群发进度：")]
    for item in items:
        assert item.id is not None
        p = await service.progress(turn.session, broadcast_id=item.id)
        rows.append(_("#{id} {when} {value}…\n   已发送 {sent} · 待发送 {pending} · 待用户上线 {held} · 失败 {failed}",
                      id=item.id, when=turn.local(item.created_at).strftime("%m-%d %H:%M"), value=item.text[:20],
                      sent=p.sent, pending=p.pending, held=p.held, failed=p.failed))
    turn.say(lines(*rows))
