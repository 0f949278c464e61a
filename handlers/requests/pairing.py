"""结对帮扶: a coordinator pairs a volunteer with a resident; the volunteer logs visits in one sentence."""

from __future__ import annotations

from sqlmodel import select

from common.i18n import _
from common.text import normalize_width
from handlers.messages import Choice
from handlers.requests.shared import FLOW, err, pattern, separator, words
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput, parse_positive_int
from models import Person
from services import requests as service
from services.people import managed_organizations

router = FeatureRouter("requests.pairing")


# ---- visits ------------------------------------------------------------------------------------------
async def maybe_visit(turn: Turn, text: str) -> bool:
    """A visit logged in one sentence (「看望王奶奶 1 小时，血压正常」) by a paired volunteer."""
    visit = service.parse_visit_line(text)
    if visit is None:
        return False
    pairings = await service.pairings_of(turn.session, volunteer_id=turn.person.id)
    if not pairings:
        return False
    pairing = service.pairing_named(pairings, text)
    if pairing is None:
        names = separator("names").join(p.resident_name for p in pairings)
        turn.say(_("请在记录里写上看望的是谁（你结对的有：{names}）。", names=names))
        return True
    await service.log_visit(turn.session, pairing=pairing, visit=visit, visited_on=turn.today, now=turn.now)
    hours = f"{visit.hours:g}"
    if visit.note:
        turn.say(_("已记录看望 {name} {hours} 小时，情况：{note}。时长已记入你的志愿时长。",
                   name=pairing.resident_name, hours=hours, note=visit.note))
    else:
        turn.say(_("已记录看望 {name} {hours} 小时。时长已记入你的志愿时长。", name=pairing.resident_name, hours=hours))
    return True


@router.command("visit", words=words("visit"))
async def visit(turn: Turn, arg: str) -> None:
    if arg and await maybe_visit(turn, arg):
        return
    if not await service.pairings_of(turn.session, volunteer_id=turn.person.id):
        turn.say(_("你还没有结对帮扶的对象。结对由社区协调员安排。"))
        return
    turn.ask(FLOW, "visit", _("请用一句话记录这次看望，例如「看望王奶奶 1 小时，血压正常」："))


@router.step(FLOW, "visit")
async def on_visit(turn: Turn, text: str) -> None:
    turn.end_flow()
    if not await maybe_visit(turn, text):
        turn.ask(FLOW, "visit", _("没读懂，请写上看望谁和多少小时，例如「看望王奶奶 1 小时，血压正常」："))


# ---- pairing (coordinators) ----------------------------------------------------------------------------
@router.command("pair", words=words("pair"))
async def pair_entry(turn: Turn, _arg: str) -> None:
    admin = await turn.admin()
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)
    if not orgs:
        turn.say(_("只有社区协调员可以安排结对帮扶。"))
        return
    turn.state.data = {"organization_id": orgs[0].id}
    turn.ask(FLOW, "pair_volunteer", _("结对帮扶：请输入志愿者的姓名："))


@router.step(FLOW, "pair_volunteer")
async def on_pair_volunteer(turn: Turn, text: str) -> None:
    raw = text.removeprefix("a:p:") if text.startswith("a:p:") else None
    if raw is not None and raw.isascii() and raw.isdigit() and int(raw) <= 2**31 - 1:
        turn.set_data(volunteer_id=int(raw))
    else:
        name = normalize_width(text).strip()
        people = list(await turn.session.exec(
            select(Person).where(Person.name == name, Person.status == "active").order_by(Person.id).limit(5)))
        if not people:
            turn.ask(FLOW, "pair_volunteer", _("没有找到名叫「{name}」的已注册志愿者，请重新输入姓名：", name=name))
            return
        if len(people) > 1:
            turn.ask(FLOW, "pair_volunteer", _("有同名的志愿者，请选择："),
                     [Choice(label=f"{p.name} {p.phone_masked or ''} {p.area or ''}"[:30], value=f"a:p:{p.id}")
                      for p in people])
            return
        turn.set_data(volunteer_id=people[0].id)
    turn.ask(FLOW, "pair_resident", _("结对的居民怎么称呼？（如「王奶奶」）"))


@router.step(FLOW, "pair_resident")
async def on_pair_resident(turn: Turn, text: str) -> None:
    name = normalize_width(text).strip()
    if not 1 <= len(name) <= 30 or name.startswith("a:"):
        turn.ask(FLOW, "pair_resident", _("请输入居民的称呼（30 字以内）："))
        return
    turn.set_data(resident_name=name)
    turn.ask(FLOW, "pair_interval", _("多少天看望一次？（如 7）"),
             [turn.choice(_("每 7 天"), "a:d:7"), turn.choice(_("每 14 天"), "a:d:14")])


@router.step(FLOW, "pair_interval")
async def on_pair_interval(turn: Turn, text: str) -> None:
    if text.startswith("a:d:"):
        raw = text.removeprefix("a:d:")
    else:
        raw = pattern("days_suffix").sub("", normalize_width(text).strip())
    try:
        days = parse_positive_int(raw, maximum=90)
    except InvalidInput:
        turn.ask(FLOW, "pair_interval", _("请输入 1–90 的天数："))
        return
    d = turn.data
    turn.end_flow()
    try:
        pairing = await service.create_pairing(turn.session, volunteer_id=int(d["volunteer_id"]),
                                               resident_name=d["resident_name"], interval_days=days,
                                               coordinator_id=turn.person.id, organization_id=d["organization_id"],
                                               now=turn.now)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已安排结对：志愿者每 {days} 天看望 {resident_name} 一次，已通知志愿者。", days=days,
               resident_name=pairing.resident_name))
