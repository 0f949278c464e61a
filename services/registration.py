"""Saving and withdrawing a volunteer's real-name registration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Activity, Person, Signup
from services.activities import cancel_signup


@dataclass(frozen=True, slots=True)
class Skill:
    code: str
    zh: str
    en: str
    category: str  # the taxonomy category this skill serves (used to match requests)


SKILLS: tuple[Skill, ...] = (
    Skill("elderly", "助老陪伴", "Elderly companionship", "elderly"),
    Skill("disability", "助残服务", "Disability support", "disability"),
    Skill("tutoring", "儿童辅导", "Tutoring children", "children"),
    Skill("medical", "医疗健康", "Health / medical", "health"),
    Skill("legal", "法律咨询", "Legal advice", "legal"),
    Skill("counseling", "心理疏导", "Counselling", "counseling"),
    Skill("repair", "家电维修", "Repairs", "repair"),
    Skill("errands", "跑腿代办", "Errands", "errands"),
    Skill("environment", "环保清洁", "Environment / cleaning", "environment"),
    Skill("media", "摄影宣传", "Photo / publicity", "other"),
    Skill("arts", "文艺表演", "Arts / performance", "other"),
    Skill("driving", "驾驶接送", "Driving", "errands"),
)


def skills_catalog() -> list[Skill]:
    return list(SKILLS)


def skill_label(code: str, lang: str) -> str:
    for skill in SKILLS:
        if skill.code == code:
            return skill.en if lang == "en" else skill.zh
    return code


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
    person.birth_date = date.fromisoformat(form["birth_date"]) if form.get("birth_date") else None
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
    person.birth_date = None
    person.status = "withdrawn"
    session.add(person)
    await session.flush()
