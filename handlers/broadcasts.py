"""Coordinators' broadcasts: write a call, pick who gets it, see the count, confirm; ask for progress."""

from __future__ import annotations

from sqlmodel import col, select

from common.i18n import _
from handlers.messages import Choice
from handlers.turn import FeatureRouter, Turn
from models import Activity, Organization
from services import broadcasts as service
from services.people import PermissionDenied, managed_organizations, require_manager
from services.registration import SKILLS, skill_label

router = FeatureRouter("broadcasts")
FLOW = "bc"

BROADCAST_TEXT_COMMANDS: dict[str, str] = {
    "群发": "bc", "群发通知": "bc", "发通知": "bc", "发布通知": "bc", "/broadcast": "bc", "broadcast": "bc",
    "群发进度": "bcs", "通知进度": "bcs", "/broadcasts": "bcs", "broadcast progress": "bcs",
}

TARGETS = (("org", "本组织全体志愿者", "All volunteers of the organization"),
           ("skill", "有某项技能的志愿者", "Volunteers with a skill"),
           ("area", "某个社区/地区的志愿者", "Volunteers in an area"),
           ("activity", "某个活动的报名者", "Volunteers signed up for an activity"))
ERRORS = {
    "empty": ("通知内容不能为空。", "The message is empty."),
    "too_long": (f"通知请控制在 {service.MAX_TEXT} 字以内。", f"Please keep it under {service.MAX_TEXT} characters."),
    "activity_not_in_org": ("只能选择本组织的活动。", "Pick an activity of your organization."),
    "bad_target": ("请重新选择发送对象。", "Please choose the recipients again."),
    "no_org": ("找不到这个组织。", "That organization does not exist."),
}


async def _orgs(turn: Turn) -> list[Organization]:
    admin = await turn.admin()
    return await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)


def _deny(turn: Turn) -> None:
    turn.say(_("抱歉，只有协调员或管理员可以群发通知。"))


@router.command("bc", "broadcast")
async def start_broadcast(turn: Turn, _arg: str) -> None:
    orgs = await _orgs(turn)
    if not orgs:
        _deny(turn)
        return
    turn.state.data = {"org_ids": [o.id for o in orgs]}
    if len(orgs) == 1:
        turn.set_data(org_id=orgs[0].id)
        _ask_text(turn, orgs[0].name)
        return
    turn.ask(FLOW, "org", _("给哪个组织的志愿者发通知？"),
             [Choice(label=o.name, value=f"a:{o.id}") for o in orgs[:20]])


def _ask_text(turn: Turn, org_name: str) -> None:
    turn.ask(FLOW, "text", _("群发通知（{org_name}）。请输入通知内容，例如「3.12 植树节 需要 20 名志愿者，上午 9 点集合」：", org_name=org_name))


@router.step(FLOW, "org")
async def on_org(turn: Turn, text: str) -> None:
    value = text.removeprefix("a:")
    if not value.isdigit() or int(value) not in turn.data["org_ids"]:
        orgs = [await turn.session.get(Organization, i) for i in turn.data["org_ids"]]
        turn.ask(FLOW, "org", _("请回复数字选择组织："),
                 [Choice(label=o.name, value=f"a:{o.id}") for o in orgs if o])
        return
    org = await turn.session.get(Organization, int(value))
    turn.set_data(org_id=int(value))
    _ask_text(turn, org.name if org else "")


def _target_choices(turn: Turn) -> list[Choice]:
    return [turn.choice(zh, en, f"a:{kind}") for kind, zh, en in TARGETS]


@router.step(FLOW, "text")
async def on_text(turn: Turn, text: str) -> None:
    body = text.strip()
    if len(body) < 2 or len(body) > service.MAX_TEXT:
        turn.ask(FLOW, "text", _("通知内容需要 2–{max_text} 个字，请重新输入：", max_text=service.MAX_TEXT))
        return
    turn.set_data(text=body)
    turn.ask(FLOW, "target", _("发给谁？"), _target_choices(turn))


@router.step(FLOW, "target")
async def on_target(turn: Turn, text: str) -> None:
    kind = text.removeprefix("a:")
    if kind == "org":
        turn.set_data(kind="org", value="")
        await _show_count(turn)
    elif kind == "skill":
        turn.set_data(kind="skill")
        turn.ask(FLOW, "value", _("选择技能："),
                 [Choice(label=skill_label(s.code, turn.lang), value=f"a:{s.code}") for s in SKILLS])
    elif kind == "area":
        turn.set_data(kind="area")
        turn.ask(FLOW, "value", _("输入社区或地区名称（如「花家地」）："))
    elif kind == "activity":
        activities = list(await turn.session.exec(
            select(Activity).where(Activity.organization_id == turn.data["org_id"], Activity.status == "open",
                                   Activity.end_at > turn.days_ago(30))
            .order_by(col(Activity.start_at).desc()).limit(10)))
        if not activities:
            turn.ask(FLOW, "target", _("本组织近期没有活动。请选择其他发送对象："),
                     _target_choices(turn))
            return
        turn.set_data(kind="activity")
        turn.ask(FLOW, "value", _("选择活动："),
                 [Choice(label=f"{a.title[:24]} {turn.local(a.start_at):%m-%d}", value=f"a:{a.id}") for a in activities])
    else:
        turn.ask(FLOW, "target", _("请回复数字选择发送对象："),
                 _target_choices(turn))


@router.step(FLOW, "value")
async def on_value(turn: Turn, text: str) -> None:
    value = text.removeprefix("a:").strip()
    kind = turn.data.get("kind")
    if kind == "skill" and value not in {s.code for s in SKILLS}:
        turn.ask(FLOW, "value", _("请回复数字选择技能："),
                 [Choice(label=skill_label(s.code, turn.lang), value=f"a:{s.code}") for s in SKILLS])
        return
    if kind == "area" and not 1 <= len(value) <= 60:
        turn.ask(FLOW, "value", _("请输入社区或地区名称："))
        return
    if kind == "activity" and not value.isdigit():
        turn.ask(FLOW, "target", _("请重新选择发送对象："), _target_choices(turn))
        return
    turn.set_data(value=value)
    await _show_count(turn)


def _describe(turn: Turn, kind: str, value: str) -> str:
    if kind == "skill":
        return turn.t(f"技能：{skill_label(value, 'zh-Hans')}", f"skill: {skill_label(value, 'en')}")
    if kind == "area":
        return turn.t(_("地区：{value}", value=value))
    if kind == "activity":
        return turn.t(_("活动 #{value} 的报名者", value=value))
    return turn.t(_("本组织全体志愿者"))


async def _show_count(turn: Turn) -> None:
    d = turn.data
    try:
        audience = await service.count_audience(turn.session, organization_id=d["org_id"], kind=d["kind"],
                                                value=d.get("value", ""))
    except service.BroadcastError as error:
        turn.ask(FLOW, "target", *ERRORS.get(error.reason, ERRORS["bad_target"]), _target_choices(turn))
        return
    who = _describe(turn, d["kind"], d.get("value", ""))
    if audience.people == 0:
        turn.ask(FLOW, "target", _("「{who}」目前没有可以接收通知的志愿者。请选择其他发送对象：", who=who), _target_choices(turn))
        return
    turn.ask(FLOW, "confirm",
             _("通知内容：\n{text}\n\n发送对象：{who}\n共 {people} 名志愿者（{messages} 条消息）。确认发送吗？", text=d['text'], who=who, people=audience.people, messages=audience.messages),
             [turn.choice(_("确认发送"), "a:yes"), turn.choice(_("放弃"), "a:no")])


@router.step(FLOW, "confirm")
async def on_confirm(turn: Turn, text: str) -> None:
    if text == "a:no":
        turn.end_flow()
        turn.say(_("已放弃，通知没有发送。"))
        return
    if text != "a:yes":
        turn.say(_("请回复 1 确认发送，或 2 放弃。"))
        await _show_count(turn)
        return
    d = turn.data
    admin = await turn.admin()
    try:  # the role is checked again at the moment of sending
        await require_manager(turn.session, person_id=turn.person.id, admin=admin, organization_id=d["org_id"])
        broadcast = await service.queue_broadcast(turn.session, author_id=turn.person.id, organization_id=d["org_id"],
                                                  kind=d["kind"], value=d.get("value", ""), text=d["text"],
                                                  now=turn.now)
    except PermissionDenied:
        turn.end_flow()
        _deny(turn)
        return
    except service.BroadcastError as error:
        turn.end_flow()
        turn.say(*ERRORS.get(error.reason, ERRORS["bad_target"]))
        return
    turn.end_flow()
    turn.say(_("已排队发送给 {recipients} 名志愿者（{queued} 条消息，编号 {id}）。夜间（21:30–08:00）会等到早上再发。回复「群发进度」查看发送情况。", recipients=broadcast.recipients, queued=broadcast.queued, id=broadcast.id),
             [turn.choice(_("查看进度"), f"bcs:{broadcast.id}")])


@router.command("bcs")
async def broadcast_progress(turn: Turn, arg: str) -> None:
    orgs = await _orgs(turn)
    if not orgs:
        _deny(turn)
        return
    org_ids = [o.id for o in orgs if o.id is not None]
    items = await service.recent_broadcasts(turn.session, organization_ids=org_ids, limit=5)
    if arg.isdigit():
        items = [b for b in items if b.id == int(arg)] or [
            b for b in await service.recent_broadcasts(turn.session, organization_ids=org_ids, limit=200)
            if b.id == int(arg)]
    if not items:
        turn.say(_("还没有群发记录。"), [turn.choice(_("群发通知"), "bc")])
        return
    lines = [turn.t(_("群发进度："))]
    for item in items:
        assert item.id is not None
        p = await service.progress(turn.session, broadcast_id=item.id)
        when = turn.local(item.created_at).strftime("%m-%d %H:%M")
        lines.append(turn.t(
            _("#{id} {when} {value}…\n   已发送 {sent} · 待发送 {pending} · 待用户上线 {held} · 失败 {failed}", id=item.id, when=when, value=item.text[:20], sent=p.sent, pending=p.pending, held=p.held, failed=p.failed),
        ))
    text = "\n".join(lines)
    turn.say(text)

