"""Coordinators keep the reminder calendar by message: list, switch off/on, edit the text, add a day."""

from __future__ import annotations

import re

from common.i18n import _
from common.text import WEEKDAYS, cn_number, normalize_width
from handlers.messages import Choice
from handlers.turn import FeatureRouter, Turn
from models import utcnow
from models.reminders import Observance
from services.calendar import Rule, RuleError, date_in_year, validate, year_calendar
from services.people import managed_organizations

router = FeatureRouter("observances")
FLOW = "obs"
OBSERVANCE_TEXT_COMMANDS = {"节日管理": "obs", "纪念日管理": "obs", "提醒日历": "obs", "/observances": "obs",
                            "添加纪念日": "obsnew", "添加节日": "obsnew"}

# lunar month names and "last" (week); other numbers are plain digits or numerals (cn_number)
LUNAR_NUMBERS = {"正": 1, "冬": 11, "腊": 12, "最后一": -1, "最后": -1}


def _number(token: str) -> int | None:
    token = token.strip()
    if token in LUNAR_NUMBERS:
        return LUNAR_NUMBERS[token]
    return cn_number(token.removeprefix("初"))  # 初九 → 9


def parse_rule(raw: str) -> Rule:
    """'3月5日' (solar), '农历九月初九' / '农历9月9日' (lunar), '5月第三个周日' (nth weekday)."""
    text = normalize_width(raw).replace(" ", "")
    match = re.fullmatch(r"(\d{1,2}|[一二三四五六七八九十]+)月第?(\d|[一二三四五]|最后一?)个?(?:周|星期|礼拜)([一二三四五六日天])", text)
    if match:
        month, nth = _number(match[1]), _number(match[2])
        weekday = WEEKDAYS.index(match[3].replace("天", "日"))
        if month is None or nth is None:
            raise RuleError("bad month or week")
        return Rule("nth_weekday", month, weekday=weekday, nth=nth)
    match = re.fullmatch(r"(农历|阴历)?(\d{1,2}|正|冬|腊|[一二三四五六七八九十]+)月(\d{1,2}|初[一二三四五六七八九十]|十五|二十|三十)[日号]?",
                         text)
    if match:
        month, day = _number(match[2]), _number(match[3])
        if month is None or day is None:
            raise RuleError("bad month or day")
        return Rule("lunar" if match[1] else "solar", month, day=day)
    match = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})", text)
    if match:
        return Rule("solar", int(match[1]), day=int(match[2]))
    raise RuleError("unreadable")


def describe(turn: Turn, observance: Observance) -> str:
    if observance.rule == "lunar":
        return turn.t(_("农历{month}月{day}日", month=observance.month, day=observance.day))
    if observance.rule == "nth_weekday":
        nth = "最后一" if observance.nth == -1 else str(observance.nth)
        return turn.t(f"{observance.month}月第{nth}个周{WEEKDAYS[observance.weekday or 0]}",
                      f"week {observance.nth} weekday {observance.weekday} of month {observance.month}")
    return turn.t(_("{month}月{day}日", month=observance.month, day=observance.day))


async def _allowed(turn: Turn) -> bool:
    admin = await turn.admin()
    if admin or await managed_organizations(turn.session, person_id=turn.person.id, admin=False):
        return True
    turn.say(_("抱歉，只有协调员或管理员可以管理节日提醒。"))
    return False


@router.command("obs")
async def show(turn: Turn, arg: str) -> None:
    if not await _allowed(turn):
        return
    if arg.isdigit():
        await _details(turn, int(arg))
        return
    year = turn.today.year
    entries = await year_calendar(turn.session, year=year, include_inactive=True)
    if not entries:
        turn.say(_("日历里还没有节日。"), [turn.choice(_("添加纪念日"), "obsnew")])
        return
    lines = [turn.t(_("{year} 年节日提醒（回复序号查看或修改）：", year=year))]
    choices: list[Choice] = []
    for i, entry in enumerate(entries, 1):
        off = "" if entry.observance.active else turn.t(_("（已关闭）"))
        lines.append(f"{i}. {entry.day:%m-%d} {entry.observance.name}{off}")
        choices.append(Choice(label=entry.observance.name[:30], value=f"obs:{entry.observance.id}"))
    choices.append(turn.choice(_("添加纪念日"), "obsnew"))
    text = "\n".join(lines)
    turn.say(text, choices)


async def _details(turn: Turn, observance_id: int) -> None:
    observance = await turn.session.get(Observance, observance_id)
    if observance is None:
        turn.say(_("找不到这个节日。"))
        return
    day = date_in_year(Rule.of(observance), turn.today.year)
    days_before = observance.days_before if observance.days_before is not None else turn.t(_("默认"))
    status = turn.t(_("开启")) if observance.active else turn.t(_("已关闭"))
    text_zh = (f"【{observance.name}】{describe(turn, observance)}（今年 {day or '-'}）\n状态：{status}\n"
               f"提前提醒天数：{days_before}\n提醒文字：{observance.reminder_text or '（无）'}")
    text_en = (f"[{observance.name_en or observance.name}] {describe(turn, observance)} (this year {day or '-'})\n"
               f"Status: {status}\nDays before: {days_before}\nText: {observance.reminder_text_en or observance.reminder_text}")
    toggle = (turn.choice(_("关闭提醒"), f"obsoff:{observance.id}") if observance.active
              else turn.choice(_("开启提醒"), f"obson:{observance.id}"))
    turn.say(text_zh, text_en, [toggle, turn.choice(_("修改提醒文字"), f"obstext:{observance.id}"),
                                turn.choice(_("返回日历"), "obs")])


async def _switch(turn: Turn, arg: str, *, active: bool) -> None:
    if not await _allowed(turn):
        return
    observance = await turn.session.get(Observance, int(arg)) if arg.isdigit() else None
    if observance is None:
        turn.say(_("找不到这个节日。"))
        return
    observance.active = active
    observance.updated_at = utcnow()
    turn.session.add(observance)
    turn.say(f"「{observance.name}」的提醒已{'开启' if active else '关闭'}。",
             f"Reminders for \"{observance.name_en or observance.name}\" are {'on' if active else 'off'}.")


@router.command("obsoff")
async def switch_off(turn: Turn, arg: str) -> None:
    await _switch(turn, arg, active=False)


@router.command("obson")
async def switch_on(turn: Turn, arg: str) -> None:
    await _switch(turn, arg, active=True)


@router.command("obstext")
async def edit_text(turn: Turn, arg: str) -> None:
    if not await _allowed(turn):
        return
    if not arg.isdigit() or await turn.session.get(Observance, int(arg)) is None:
        turn.say(_("找不到这个节日。"))
        return
    turn.state.data = {"observance_id": int(arg)}
    turn.ask(FLOW, "text", _("请输入新的提醒文字（500 字以内）："))


@router.step(FLOW, "text")
async def on_text(turn: Turn, text: str) -> None:
    if not 2 <= len(text) <= 500:
        turn.ask(FLOW, "text", _("提醒文字需要 2–500 个字："))
        return
    observance = await turn.session.get(Observance, turn.data["observance_id"])
    turn.end_flow()
    if observance is None:
        turn.say(_("找不到这个节日。"))
        return
    observance.reminder_text = text
    observance.updated_at = utcnow()
    turn.session.add(observance)
    turn.say(f"「{observance.name}」的提醒文字已更新。", "The reminder text is updated.")


@router.command("obsnew")
async def new_day(turn: Turn, _arg: str) -> None:
    if not await _allowed(turn):
        return
    turn.state.data = {}
    turn.ask(FLOW, "name", _("添加纪念日。名称是？（如「社区志愿者日」）"))


@router.step(FLOW, "name")
async def on_name(turn: Turn, text: str) -> None:
    if not 2 <= len(text) <= 30:
        turn.ask(FLOW, "name", _("名称需要 2–30 个字："))
        return
    turn.set_data(name=text)
    turn.ask(FLOW, "rule", _("日期规则是？例如「3月5日」、「农历九月初九」或「5月第三个周日」："))


@router.step(FLOW, "rule")
async def on_rule(turn: Turn, text: str) -> None:
    try:
        rule = parse_rule(text)
        validate(rule)
    except RuleError:
        turn.ask(FLOW, "rule", _("没能读懂这个日期。请写成「3月5日」、「农历九月初九」或「5月第三个周日」："))
        return
    turn.set_data(rule=rule.kind, month=rule.month, day=rule.day, weekday=rule.weekday, nth=rule.nth)
    turn.ask(FLOW, "reminder", _("提醒志愿者的文字是？"))


@router.step(FLOW, "reminder")
async def on_reminder(turn: Turn, text: str) -> None:
    if not 2 <= len(text) <= 500:
        turn.ask(FLOW, "reminder", _("提醒文字需要 2–500 个字："))
        return
    d = turn.data
    observance = Observance(code=f"custom_{turn.person.id}_{int(turn.now.timestamp())}", name=d["name"],
                            rule=d["rule"], month=d["month"], day=d["day"], weekday=d["weekday"], nth=d["nth"],
                            reminder_text=text, updated_at=turn.now)
    turn.session.add(observance)
    await turn.session.flush()
    day = date_in_year(Rule.of(observance), turn.today.year)
    turn.end_flow()
    turn.say(_("已添加「{name}」（{value}，今年 {value2}），会按时提醒志愿者。", name=observance.name, value=describe(turn, observance), value2=day or '-'),
             [turn.choice(_("查看日历"), "obs")])
