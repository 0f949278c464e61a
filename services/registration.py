"""Saving and withdrawing a volunteer's real-name registration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import N_, Msg, Text, render
from models import Activity, Person, Signup
from services.activities import cancel_signup
from services.certificates import forget_id_numbers


@dataclass(frozen=True, slots=True)
class Skill:
    code: str
    label: Msg  # rendered in the reader's language from the catalogs (registration domain)
    category: str  # the taxonomy category this skill serves (used to match requests)


SKILLS: tuple[Skill, ...] = (
    Skill("elderly", N_("助老陪伴"), "elderly"),
    Skill("disability", N_("助残服务"), "disability"),
    Skill("tutoring", N_("儿童辅导"), "children"),
    Skill("medical", N_("医疗健康"), "health"),
    Skill("legal", N_("法律咨询"), "legal"),
    Skill("counseling", N_("心理疏导"), "counseling"),
    Skill("repair", N_("家电维修"), "repair"),
    Skill("errands", N_("跑腿代办"), "errands"),
    Skill("environment", N_("环保清洁"), "environment"),
    Skill("media", N_("摄影宣传"), "other"),
    Skill("arts", N_("文艺表演"), "other"),
    Skill("driving", N_("驾驶接送"), "errands"),
)
_BY_CODE = {skill.code: skill for skill in SKILLS}


def skills_catalog() -> list[Skill]:
    return list(SKILLS)


def skill_text(code: str) -> Text:
    """A skill's name as a text (an unknown code stays as it is)."""
    skill = _BY_CODE.get(code)
    return skill.label if skill is not None else code


def skill_label(code: str, lang: str) -> str:
    """A skill's name rendered in ``lang`` (繁體 and English come from the catalogs)."""
    return render(skill_text(code), lang)


class RegistrationError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def register_person(session: AsyncSession, *, person: Person, form: dict[str, Any], now: datetime) -> Person:
    """Save a confirmed form (already validated and encrypted by the dialog) onto ``person``."""
    other = (
        await session.exec(
            select(Person).where(Person.id_number_digest == form["id_digest"], Person.id != person.id)
        )
    ).first()
    if other is not None:
        raise RegistrationError("duplicate_id")
    person.name = form["name"]
    person.id_number_enc = form["id_enc"]
    person.id_number_digest = form["id_digest"]
    person.id_number_masked = form["id_masked"]
    person.birth_year = form.get("birth_year")
    person.gender = form.get("gender")
    person.phone_enc = form["phone_enc"]
    person.phone_masked = form["phone_masked"]
    person.guardian_name = form.get("guardian_name")
    person.guardian_phone_enc = form.get("guardian_phone_enc")
    person.skills = ",".join(form.get("skills", []))
    person.area = form["area"]
    if person.status != "active":
        person.registered_at = now
    person.status = "active"
    session.add(person)
    await session.flush()
    return person


async def withdraw_person(session: AsyncSession, *, person: Person, now: datetime) -> None:
    """Delete the personal information, cancel upcoming sign-ups; the hours ledger stays."""
    upcoming = await session.exec(
        select(Signup)
        .join(Activity, Activity.id == Signup.activity_id)
        .where(Signup.person_id == person.id, Signup.status != "cancelled", Activity.start_at > now)
    )
    for signup in list(upcoming):
        await cancel_signup(session, activity_id=signup.activity_id, person_id=person.id, now=now)
    person.id_number_enc = None
    person.id_number_digest = None
    person.id_number_masked = None
    person.phone_enc = None
    person.phone_masked = None
    person.guardian_name = None
    person.guardian_phone_enc = None
    person.birth_year = None
    person.status = "withdrawn"
    session.add(person)
    assert person.id is not None
    await forget_id_numbers(session, person_id=person.id)  # issued certificates keep the name only
    await session.flush()
