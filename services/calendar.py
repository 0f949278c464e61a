"""Dates of observance rules: fixed solar dates, Chinese lunar dates (lunar-python), nth weekdays.

Also loads the default calendar (``bot/data/observances.json`` shape) into the ``observance`` table.
"""

from __future__ import annotations

import calendar as gregorian
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from lunar_python import Lunar
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.reminders import RULE_KINDS, Observance


class RuleError(ValueError):
    """An observance rule that cannot date anything (e.g. 2/30, a 6th Sunday)."""


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    month: int
    day: int | None = None
    weekday: int | None = None  # 0 = Monday … 6 = Sunday
    nth: int | None = None  # 1..5, or -1 for the last

    @classmethod
    def of(cls, observance: Observance) -> Rule:
        return cls(observance.rule, observance.month, observance.day, observance.weekday, observance.nth)


def nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    if nth == -1:
        last = date(year, month, gregorian.monthrange(year, month)[1])
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    found = first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    if found.month != month:
        raise RuleError(f"there is no weekday #{nth} ({weekday}) in {year}-{month:02d}")
    return found


def date_in_year(rule: Rule, year: int) -> date | None:
    """The Gregorian date of ``rule`` in ``year``; None when the rule has no date that year (2/29)."""
    if rule.kind not in RULE_KINDS:
        raise RuleError(f"unknown rule kind {rule.kind!r}")
    if rule.kind == "solar":
        if rule.day is None:
            raise RuleError("a solar rule needs a day")
        try:
            return date(year, rule.month, rule.day)
        except ValueError:
            if rule.month == 2 and rule.day == 29:
                return None
            raise RuleError(f"no such date {rule.month}/{rule.day}") from None
    if rule.kind == "lunar":
        if rule.day is None or not 1 <= rule.day <= 30:
            raise RuleError("a lunar rule needs a day 1-30")
        # lunar year ``year`` — its festivals all fall within Gregorian ``year`` except late-12th-month days
        try:
            solar = Lunar.fromYmd(year, rule.month, rule.day).getSolar()
        except Exception:  # lunar-python raises plain Exceptions for a 30th in a 29-day month
            if rule.day == 30:  # 除夕-style rules fall back to the month's last day
                solar = Lunar.fromYmd(year, rule.month, 29).getSolar()
            else:
                raise RuleError(f"no lunar date {rule.month}/{rule.day} in {year}") from None
        return date(solar.getYear(), solar.getMonth(), solar.getDay())
    if rule.weekday is None or rule.nth is None:
        raise RuleError("an nth_weekday rule needs weekday and nth")
    return nth_weekday(year, rule.month, rule.weekday, rule.nth)


def dates_between(rule: Rule, start: date, end: date) -> list[date]:
    """Every date of ``rule`` in [start, end] (lunar dates may belong to the neighbouring lunar year)."""
    found = []
    for year in range(start.year - 1, end.year + 1):
        day = date_in_year(rule, year)
        if day is not None and start <= day <= end:
            found.append(day)
    return sorted(set(found))


def validate(rule: Rule) -> None:
    """Raise RuleError unless the rule dates something in the next few years."""
    if not 1 <= rule.month <= 12:
        raise RuleError("month must be 1-12")
    if rule.kind == "nth_weekday" and (rule.weekday is None or not 0 <= rule.weekday <= 6
                                       or rule.nth not in (1, 2, 3, 4, 5, -1)):
        raise RuleError("weekday must be 0-6 and nth 1-5 or -1")
    if not any(date_in_year(rule, year) for year in range(2024, 2033)):
        raise RuleError("the rule never matches a date")


@dataclass(frozen=True, slots=True)
class YearEntry:
    day: date
    observance: Observance


async def year_calendar(session: AsyncSession, *, year: int, include_inactive: bool = False) -> list[YearEntry]:
    query = select(Observance)
    if not include_inactive:
        query = query.where(Observance.active == True)  # noqa: E712
    entries = []
    for observance in await session.exec(query):
        for day in dates_between(Rule.of(observance), date(year, 1, 1), date(year, 12, 31)):
            entries.append(YearEntry(day, observance))
    return sorted(entries, key=lambda e: (e.day, e.observance.code))


OBSERVANCE_FIELDS = ("name", "name_en", "rule", "month", "day", "weekday", "nth", "reminder_text",
                     "reminder_text_en", "categories", "days_before", "active")


async def load_defaults(session: AsyncSession, items: Iterable[dict[str, Any]], *, now: datetime,
                        overwrite: bool = False) -> tuple[int, int]:
    """Insert the default days that are missing (by ``code``); ``overwrite`` also resets existing ones.

    Returns (added, updated). Coordinators' edits are kept unless ``overwrite`` is asked for.
    """
    existing = {o.code: o for o in await session.exec(select(Observance))}
    added = updated = 0
    for item in items:
        values = {k: item[k] for k in OBSERVANCE_FIELDS if k in item}
        rule = Rule(values.get("rule", "solar"), values["month"], values.get("day"), values.get("weekday"),
                    values.get("nth"))
        validate(rule)
        row = existing.get(item["code"])
        if row is None:
            session.add(Observance(code=item["code"], updated_at=now, **values))
            added += 1
        elif overwrite:
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            session.add(row)
            updated += 1
    await session.flush()
    return added, updated
