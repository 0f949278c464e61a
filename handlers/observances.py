"""Coordinators keep the reminder calendar by message: list, switch off/on, edit the text, add a day."""

from __future__ import annotations

from pydantic import BaseModel

from common.i18n import Text, _, by_language, lines
from handlers.flows import Field, Flow
from handlers.messages import Choice
from handlers.observance_rules import describe, parse_rule
from handlers.payloads import InvalidPayload, Payload, payload
from handlers.permissions import DENIED, ORG_DENIED
from handlers.reminder_words import words
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput
from models.reminders import Observance
from services import observances as service
from services.calendar import Rule, RuleError, date_in_year, validate, year_calendar
from services.people import managed_organizations

__all__ = ["parse_rule", "router"]

router = FeatureRouter("observances")



@payload("obs")
class ShowObservance(Payload):
    observance_id: int


@payload("obsoff")
class SwitchOff(Payload):
    observance_id: int


@payload("obson")
class SwitchOn(Payload):
    observance_id: int


@payload("obstext")
class EditText(Payload):
    observance_id: int


def _name(observance: Observance) -> Text:
    return by_language(observance.name, observance.name_en)


async def _allowed(turn: Turn) -> bool:
    """Coordinators of any organization and admins (checked again right before a change)."""
    admin = await turn.admin()
    if admin or await turn.coordinates_any():
        return True
    turn.say(DENIED)
    return False


def _not_found(turn: Turn) -> None:
    turn.say(_("找不到这个节日。"))


def _refuse(turn: Turn, error: service.ObservanceError) -> None:
    if error.reason == "national":
        turn.say(_("全国性的节日只有管理员可以修改；你可以添加本组织自己的纪念日。"))
    elif error.reason == "not_manager":
        turn.say(ORG_DENIED)
    else:
        _not_found(turn)


# ---- the calendar and one day ----------------------------------------------------------------
@router.command("obs", words=words("observances")["calendar"], requires=Role.COORDINATOR)
async def show(turn: Turn, arg: str) -> None:
    if not await _allowed(turn):
        return
    if arg:
        try:
            await _details(turn, ShowObservance.from_arg(arg).observance_id)
            return
        except InvalidPayload:
            pass  # an unreadable id: the whole calendar
    year = turn.today.year
    entries = await year_calendar(turn.session, year=year, include_inactive=True)
    add = turn.choice(_("添加纪念日"), "obsnew")
    if not entries:
        turn.say(_("日历里还没有节日。"), [add])
        return
    rows: list[Text] = [_("{year} 年节日提醒（回复序号查看或修改）：", year=year)]
    choices: list[Choice] = []
    for i, entry in enumerate(entries, 1):
        name = turn.text(_name(entry.observance))
        off = "" if entry.observance.active else turn.text(_("（已关闭）"))
        rows.append(f"{i}. {entry.day:%m-%d} {name}{off}")
        choices.append(Choice(label=name[:30], value=ShowObservance(entry.observance.id).pack()))
    turn.say(lines(*rows), [*choices, add])


async def _details(turn: Turn, observance_id: int) -> None:
    observance = await turn.session.get(Observance, observance_id)
    if observance is None:
        _not_found(turn)
        return
    assert observance.id is not None
    day = date_in_year(Rule.of(observance), turn.today.year)
    text: Text = (by_language(observance.reminder_text, observance.reminder_text_en) if observance.reminder_text
                  else _("（无）"))
    turn.say(
        _("【{name}】{rule}（今年 {day}）\n状态：{status}\n提前提醒天数：{days_before}\n提醒文字：{text}",
          name=_name(observance), rule=describe(observance), day=str(day or "-"),
          status=_("开启") if observance.active else _("已关闭"),
          days_before=observance.days_before if observance.days_before is not None else _("默认"), text=text),
        [turn.choice(_("关闭提醒"), SwitchOff(observance.id).pack()) if observance.active
         else turn.choice(_("开启提醒"), SwitchOn(observance.id).pack()),
         turn.choice(_("修改提醒文字"), EditText(observance.id).pack()),
         turn.choice(_("返回日历"), "obs")])


# ---- switch off / on -------------------------------------------------------------------------
async def _switch(turn: Turn, observance_id: int, *, active: bool) -> None:
    if not await _allowed(turn):
        return
    try:
        observance = await service.set_active(turn.session, observance_id=observance_id, active=active,
                                              editor_id=turn.person.id, admin=await turn.admin(), now=turn.now)
    except service.ObservanceError as error:
        _refuse(turn, error)
        return
    name = _name(observance)
    turn.say(_("「{name}」的提醒已开启。", name=name) if active else _("「{name}」的提醒已关闭。", name=name))


@router.command("obsoff", payload=SwitchOff, requires=Role.COORDINATOR)
async def switch_off(turn: Turn, p: SwitchOff) -> None:
    await _switch(turn, p.observance_id, active=False)


@router.command("obson", payload=SwitchOn, requires=Role.COORDINATOR)
async def switch_on(turn: Turn, p: SwitchOn) -> None:
    await _switch(turn, p.observance_id, active=True)


# ---- edit the text ---------------------------------------------------------------------------
class TextDraft(BaseModel):
    observance_id: int | None = None
    text: str | None = None


def parse_text(_turn: Turn, text: str) -> str:
    try:
        return service.check_text(text)
    except service.ObservanceError as error:
        raise InvalidInput(error.reason) from None


async def save_text(turn: Turn, draft: TextDraft) -> None:
    assert draft.observance_id is not None and draft.text is not None
    try:
        observance = await service.set_reminder_text(turn.session, observance_id=draft.observance_id,
                                                     text=draft.text, editor_id=turn.person.id,
                                                     admin=await turn.admin(), now=turn.now)
    except service.ObservanceError as error:
        _refuse(turn, error)
        return
    turn.say(_("「{name}」的提醒文字已更新。", name=_name(observance)))


TEXT_ERRORS = {"text_length": _("提醒文字需要 2–500 个字："), "name_length": _("名称需要 2–30 个字："),
               "rule": _("没能读懂这个日期。请写成「3月5日」、「农历九月初九」或「5月第三个周日」：")}

text_flow = Flow("obs_text", TextDraft, [
    Field("text", _("请输入新的提醒文字（500 字以内）："), parse=parse_text),
], requires=Role.COORDINATOR, done=save_text, confirm=False, errors=TEXT_ERRORS)
text_flow.register(router)


@router.command("obstext", payload=EditText, requires=Role.COORDINATOR)
async def edit_text(turn: Turn, p: EditText) -> None:
    if not await _allowed(turn):
        return
    observance = await turn.session.get(Observance, p.observance_id)
    if observance is None:
        _not_found(turn)
        return
    try:  # refused before the question, not after the answer
        await service.may_edit(turn.session, organization_id=observance.organization_id, editor_id=turn.person.id,
                               admin=await turn.admin())
    except service.ObservanceError as error:
        _refuse(turn, error)
        return
    await text_flow.start(turn, TextDraft(observance_id=p.observance_id))


# ---- add a day -------------------------------------------------------------------------------
class NewDayDraft(BaseModel):
    name: str | None = None
    rule: str | None = None  # solar / lunar / nth_weekday
    month: int | None = None
    day: int | None = None
    weekday: int | None = None
    nth: int | None = None
    reminder: str | None = None

    def as_rule(self) -> Rule:
        assert self.rule is not None and self.month is not None
        return Rule(self.rule, self.month, self.day, self.weekday, self.nth)


def parse_name(_turn: Turn, text: str) -> str:
    try:
        return service.check_name(text)
    except service.ObservanceError as error:
        raise InvalidInput(error.reason) from None


def parse_day_rule(_turn: Turn, text: str) -> Rule:
    try:
        rule = parse_rule(text)
        validate(rule)
    except RuleError:
        raise InvalidInput("rule") from None
    return rule


def store_rule(draft: NewDayDraft, rule: Rule) -> None:
    draft.rule, draft.month, draft.day, draft.weekday, draft.nth = rule.kind, rule.month, rule.day, rule.weekday, rule.nth


async def save_day(turn: Turn, draft: NewDayDraft) -> None:
    assert draft.name is not None and draft.reminder is not None
    admin = await turn.admin()
    # an admin adds to the national calendar; a coordinator to their (first) organization's own days
    orgs = [] if admin else await managed_organizations(turn.session, person_id=turn.person.id, admin=False)
    try:
        observance = await service.add_observance(turn.session, author_id=turn.person.id, name=draft.name,
                                                  rule=draft.as_rule(), reminder_text=draft.reminder,
                                                  organization_id=orgs[0].id if orgs else None, admin=admin,
                                                  now=turn.now)
    except service.ObservanceError as error:
        if error.reason in ("national", "not_manager"):
            turn.say(DENIED)
            return
        turn.say(TEXT_ERRORS["rule"])
        return
    except RuleError:
        turn.say(TEXT_ERRORS["rule"])
        return
    day = date_in_year(Rule.of(observance), turn.today.year)
    turn.say(_("已添加「{name}」（{value}，今年 {value2}），会按时提醒志愿者。", name=observance.name,
               value=describe(observance), value2=str(day or "-")),
             [turn.choice(_("查看日历"), "obs")])


new_day_flow = Flow("obs_new", NewDayDraft, [
    Field("name", _("添加纪念日。名称是？（如「社区志愿者日」）"), parse=parse_name),
    Field("rule", _("日期规则是？例如「3月5日」、「农历九月初九」或「5月第三个周日」："), parse=parse_day_rule,
          store=store_rule),
    Field("reminder", _("提醒志愿者的文字是？"), parse=parse_text),
], requires=Role.COORDINATOR, done=save_day, confirm=False, errors=TEXT_ERRORS)
new_day_flow.register(router)


@router.command("obsnew", words=words("observances")["add"], requires=Role.COORDINATOR)
async def new_day(turn: Turn, _arg: str) -> None:
    if not await _allowed(turn):
        return
    await new_day_flow.start(turn)
