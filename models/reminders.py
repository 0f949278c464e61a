"""Reminder calendar, reminder preferences, broadcasts and the keys that make each reminder once-only.

The database is the source of truth for reminders (not the scheduler's job store): a reminder is
written to the outbox together with a row in ``reminder_key`` whose unique constraint makes a second
scheduler, a restart or a re-run write nothing.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models import utcnow

RULE_KINDS = ("solar", "lunar", "nth_weekday")
REMINDER_KINDS = ("observance", "activity", "broadcast")
TARGET_KINDS = ("org", "skill", "area", "activity")


class Observance(SQLModel, table=True):
    """A day on the reminder calendar (学雷锋纪念日, 重阳节, 全国助残日…) and the rule that dates it.

    ``solar``: month/day of the Gregorian calendar; ``lunar``: month/day of the Chinese lunar calendar;
    ``nth_weekday``: the ``nth`` (1-5, or -1 for the last) ``weekday`` (0 = Monday … 6 = Sunday) of ``month``.
    """

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, description="stable key, e.g. volunteer_day")
    name: str = Field(max_length=64)
    name_en: str = Field(default="", max_length=128)
    rule: str = Field(default="solar", max_length=16, description="solar | lunar | nth_weekday")
    month: int = Field(ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    weekday: int | None = Field(default=None, ge=0, le=6)
    nth: int | None = Field(default=None, ge=-1, le=5)
    reminder_text: str = Field(default="", max_length=500)
    reminder_text_en: str = Field(default="", max_length=500)
    # activity categories (handlers/data/taxonomy.json codes) whose upcoming activities are suggested
    categories: str = Field(default="", max_length=255, description="comma-separated category codes")
    days_before: int | None = Field(default=None, ge=0, le=30, description="None → REMINDER_DAYS_BEFORE")
    active: bool = True
    updated_at: datetime = Field(default_factory=utcnow)
    # added by migration 0009: the organization that owns the day (its coordinators edit it); None for
    # the national calendar (bot/data/observances.json), which only admins edit
    organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)


class ReminderPreference(SQLModel, table=True):
    """A person's choice for one reminder kind; no row means the default (on)."""

    __tablename__ = "reminder_preference"
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    kind: str = Field(max_length=16, primary_key=True, description="observance | activity | broadcast")
    enabled: bool = True
    updated_at: datetime = Field(default_factory=utcnow)


class Broadcast(SQLModel, table=True):
    """A coordinator's call to volunteers; its outbox rows carry ``delivery.broadcast_id``."""

    id: int | None = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="person.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    target_kind: str = Field(max_length=16, description="org | skill | area | activity")
    target_value: str = Field(default="", max_length=128)
    text: str = Field(max_length=2000)
    recipients: int = 0  # people reached
    queued: int = 0  # outbox rows written (one per active identity)
    created_at: datetime = Field(default_factory=utcnow)


class ReminderKey(SQLModel, table=True):
    """One reminder of one kind about one thing to one person for one day: written at most once."""

    __tablename__ = "reminder_key"
    __table_args__ = (
        UniqueConstraint("kind", "ref_id", "person_id", "due_on", name="uq_reminder_key"),
        Index("ix_reminder_key_batch", "batch"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, description="obs_before | obs_day | act_24h | act_2h | hours_due")
    ref_id: int
    person_id: int = Field(foreign_key="person.id")
    due_on: date
    batch: str = Field(max_length=32, description="the run that wrote it (its outbox rows are joined on it)")
    created_at: datetime = Field(default_factory=utcnow)
