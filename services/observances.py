"""Coordinators' edits of the reminder calendar: switch a day off/on, change its text, add a day.

Who edits what: the national calendar (``bot/data/observances.json``, no organization) is the admins';
an organization's own days are its coordinators' (and the admins'). Every write checks it here.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from models.reminders import Observance
from services.calendar import Rule, validate
from services.people import PermissionDenied, require_manager

NAME_LENGTH = (2, 30)
TEXT_LENGTH = (2, 500)


class ObservanceError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "name_length" / "text_length" / "not_found" / "national" / "not_manager"


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


async def may_edit(session: AsyncSession, *, organization_id: int | None, editor_id: int, admin: bool) -> None:
    """Whether the editor may write a day owned by ``organization_id``: raise ObservanceError "national"
    (None: the national calendar, for admins only) or "not_manager" (an organization they do not coordinate)."""
    if admin:
        return
    if organization_id is None:
        raise ObservanceError("national")
    try:
        await require_manager(session, person_id=editor_id, admin=False, organization_id=organization_id)
    except PermissionDenied as error:
        raise ObservanceError("not_manager") from error


async def _editable(session: AsyncSession, observance_id: int, editor_id: int, admin: bool) -> Observance:
    observance = await _get(session, observance_id)
    await may_edit(session, organization_id=observance.organization_id, editor_id=editor_id, admin=admin)
    return observance


async def set_active(session: AsyncSession, *, observance_id: int, active: bool, editor_id: int, admin: bool,
                     now: datetime) -> Observance:
    observance = await _editable(session, observance_id, editor_id, admin)
    observance.active = active
    observance.updated_at = now
    session.add(observance)
    await session.flush()
    return observance


async def set_reminder_text(session: AsyncSession, *, observance_id: int, text: str, editor_id: int, admin: bool,
                            now: datetime) -> Observance:
    text = check_text(text)
    observance = await _editable(session, observance_id, editor_id, admin)
    observance.reminder_text = text
    observance.updated_at = now
    session.add(observance)
    await session.flush()
    return observance


async def add_observance(session: AsyncSession, *, author_id: int, name: str, rule: Rule, reminder_text: str,
                         organization_id: int | None, admin: bool, now: datetime) -> Observance:
    """An organization's own day (a national one, ``organization_id`` None, for admins only); raises
    RuleError for a rule that dates nothing."""
    validate(rule)
    await may_edit(session, organization_id=organization_id, editor_id=author_id, admin=admin)
    observance = Observance(code=f"custom_{author_id}_{int(now.timestamp())}", name=check_name(name),
                            rule=rule.kind, month=rule.month, day=rule.day, weekday=rule.weekday, nth=rule.nth,
                            reminder_text=check_text(reminder_text), organization_id=organization_id, updated_at=now)
    session.add(observance)
    await session.flush()
    return observance
