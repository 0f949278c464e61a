"""结对帮扶: a coordinator pairs a volunteer with a resident; the volunteer logs visits in one sentence."""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel import select

from common.i18n import Text, _
from common.text import normalize_width
from handlers.flows import Again, Field, Flow
from handlers.hours import day_limit_text
from handlers.messages import Choice
from handlers.permissions import DENIED
from handlers.requests.shared import err, pattern, separator, words
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput, parse_positive_int
from models import Person
from services import requests as service
from services.hours import HoursError
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
    try:
        await service.log_visit(turn.session, pairing=pairing, visit=visit, visited_on=turn.today, now=turn.now)
    except HoursError as error:
        turn.say(day_limit_text(error))
        return True
    hours = f"{visit.hours:g}"
    if visit.note:
        turn.say(_("已记录看望 {name} {hours} 小时，情况：{note}。时长待协调员审核后计入你的志愿时长。",
                   name=pairing.resident_name, hours=hours, note=visit.note))
    else:
        turn.say(_("已记录看望 {name} {hours} 小时。时长待协调员审核后计入你的志愿时长。",
                   name=pairing.resident_name, hours=hours))
    return True


@router.command("visit", words=words("visit"))
async def visit(turn: Turn, arg: str) -> None:
    if arg and await maybe_visit(turn, arg):
        return
    if not await service.pairings_of(turn.session, volunteer_id=turn.person.id):
        turn.say(_("你还没有结对帮扶的对象。结对由社区协调员安排。"))
        return
    await VISIT.start(turn)


class VisitDraft(BaseModel):
    logged: bool = False


async def _parse_visit(turn: Turn, text: str) -> bool:
    """The sentence is logged (or answered) as it is parsed; one that is not a visit is asked again."""
    if not await maybe_visit(turn, text):
        raise InvalidInput("visit")
    return True


async def _visit_logged(_turn: Turn, _draft: VisitDraft) -> None:
    """maybe_visit already answered."""


VISIT = Flow("reqvisit", VisitDraft, [
    Field("logged", _("请用一句话记录这次看望，例如「看望王奶奶 1 小时，血压正常」："), parse=_parse_visit, reprompt=False),
], done=_visit_logged, confirm=False, errors={
    "visit": _("没读懂，请写上看望谁和多少小时，例如「看望王奶奶 1 小时，血压正常」："),
})
VISIT.register(router)


# ---- pairing (coordinators): a flow ----------------------------------------------------------------------------
class PairingDraft(BaseModel):
    organization_ids: list[int] = []  # the coordinator's organizations when the dialog began
    volunteer_id: int | None = None
    candidates: list[tuple[int, str]] = []  # volunteers of the same name: (id, button label)
    not_found: str | None = None  # the name last typed that matched nobody
    resident_name: str | None = None
    interval_days: int | None = None


def _volunteer_prompt(_turn: Turn, draft: PairingDraft) -> Text:
    if draft.candidates:
        return _("有同名的志愿者，请选择：")
    if draft.not_found:
        return _("没有找到名叫「{name}」的已注册志愿者，请重新输入姓名：", name=draft.not_found)
    return _("结对帮扶：请输入志愿者的姓名：")


def _volunteer_choices(_turn: Turn, draft: PairingDraft) -> list[Choice]:
    return [Choice(label=label, value=f"a:p:{person_id}") for person_id, label in draft.candidates]


async def _parse_volunteer(turn: Turn, text: str, draft: PairingDraft) -> int:
    picked = text.removeprefix("p:") if text.startswith("p:") else None
    if picked is not None and any(str(person_id) == picked for person_id, _label in draft.candidates):
        return int(picked)
    name = normalize_width(text).strip()
    found = await turn.session.exec(
        select(Person).where(Person.name == name, Person.status == "active").order_by(Person.id).limit(20))
    # only volunteers this coordinator may pair: of their organizations, or of none yet
    people = [p for p in found if await service.pairing_organization(
        turn.session, volunteer_id=int(p.id or 0), managed=draft.organization_ids) is not None][:5]
    if len(people) == 1:
        return int(people[0].id)
    draft.not_found = None if people else name
    draft.candidates = [(p.id, f"{p.name} {p.phone_masked or ''} {p.area or ''}"[:30]) for p in people]
    raise Again


def _parse_resident(_turn: Turn, text: str) -> str:
    name = normalize_width(text).strip()
    if not 1 <= len(name) <= 30 or name.startswith("a:"):
        raise InvalidInput("resident_name")
    return name


def _parse_interval(_turn: Turn, text: str) -> int:
    return parse_positive_int(pattern("days_suffix").sub("", normalize_width(text).strip()), maximum=90)


async def _save_pairing(turn: Turn, draft: PairingDraft) -> None:
    assert draft.volunteer_id is not None and draft.resident_name and draft.interval_days
    admin = await turn.admin()
    # the organizations are looked up again at the write: a role revoked mid-dialog is refused
    managed = [o.id for o in await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)
               if o.id is not None]
    organization_id = await service.pairing_organization(turn.session, volunteer_id=draft.volunteer_id,
                                                         managed=managed)
    try:
        pairing = await service.create_pairing(turn.session, volunteer_id=draft.volunteer_id,
                                               resident_name=draft.resident_name, interval_days=draft.interval_days,
                                               coordinator_id=turn.person.id, organization_id=organization_id,
                                               now=turn.now, admin=admin)
    except service.RequestError as error:
        err(turn, error)
        return
    turn.say(_("已安排结对：志愿者每 {days} 天看望 {resident_name} 一次，已通知志愿者。", days=draft.interval_days,
               resident_name=pairing.resident_name))


PAIRING = Flow("pair", PairingDraft, [
    Field("volunteer_id", _volunteer_prompt, parse=_parse_volunteer, choices=_volunteer_choices),
    Field("resident_name", _("结对的居民怎么称呼？（如「王奶奶」）"), parse=_parse_resident),
    Field("interval_days", _("多少天看望一次？（如 7）"), parse=_parse_interval,
          choices=lambda turn, _draft: [turn.choice(_("每 7 天"), "a:7"), turn.choice(_("每 14 天"), "a:14")]),
], done=_save_pairing, confirm=False, requires=Role.COORDINATOR, errors={
    "resident_name": _("请输入居民的称呼（30 字以内）："),
    "number_format": _("请输入 1–90 的天数："),
})
PAIRING.register(router)


@router.command("pair", words=words("pair"), requires=Role.COORDINATOR)
async def pair_entry(turn: Turn, _arg: str) -> None:
    admin = await turn.admin()
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)
    if not orgs:
        turn.say(DENIED)
        return
    await PAIRING.start(turn, PairingDraft(organization_ids=[o.id for o in orgs if o.id is not None]))
