"""Coordinators' edits of the reminder calendar: switch a day off/on, change its text, add a day.

Any coordinator (or admin) may edit any day, the national ones included: the handlers check the role.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from models.reminders import Observance
from services.calendar import Rule, validate

NAME_LENGTH = (2, 30)
TEXT_LENGTH = (2, 500)


class ObservanceError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "name_length" / "text_length" / "not_found"


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]:
        raise ObservanceError("name_length")
    return name


def check_text(text: str) -> str:
    text = text.strip()
    if not TEXT_LENGTH[0] <= len(text) <= TEXT_LENGTH[1]:
        raise ObservanceError("text_length")
    return text


async def _get(session: AsyncSession, observance_id: int) -> Observance:
    observance = await session.get(Observance, observance_id)
    if observance is None:
        raise ObservanceError("not_found")
    return observance


async def set_active(session: AsyncSession, *, observance_id: int, active: bool, now: datetime) -> Observance:
    observance = await _get(session, observance_id)
    observance.active = active
    observance.updated_at = now
    session.add(observance)
    await session.flush()
    return observance


async def set_reminder_text(session: AsyncSession, *, observance_id: int, text: str, now: datetime) -> Observance:
    text = check_text(text)
    observance = await _get(session, observance_id)
    observance.reminder_text = text
    observance.updated_at = now
    session.add(observance)
    await session.flush()
    return observance


async def add_observance(session: AsyncSession, *, author_id: int, name: str, rule: Rule, reminder_text: str,
                         now: datetime) -> Observance:
    """A coordinator's own day; raises RuleError for a rule that dates nothing."""
    validate(rule)
    observance = Observance(code=f"custom_{author_id}_{int(now.timestamp())}", name=check_name(name),
                            rule=rule.kind, month=rule.month, day=rule.day, weekday=rule.weekday, nth=rule.nth,
                            reminder_text=check_text(reminder_text), updated_at=now)
    session.add(observance)
    await session.flush()
    return observance
