"""SQLModel tables: the one store behind every channel.

Datetimes are time-zone aware and stored as UTC (SQLModel's UTCDateTime); handlers convert to
Asia/Shanghai for display. Alembic (``migrations/``) owns the schema.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class PersonBase(SQLModel):
    name: str | None = Field(default=None, max_length=64)
    skills: str = Field(default="", max_length=255, description="comma-separated skill codes")
    area: str | None = Field(default=None, max_length=128)
    language: str | None = Field(default=None, max_length=16)


class Person(PersonBase, table=True):
    """Anyone who talks to us. ``registered_at`` is set once 实名注册 is done."""

    id: int | None = Field(default=None, primary_key=True)
    id_number_enc: str | None = Field(default=None, max_length=512)
    # keyed hash of the ID number: finds duplicates without decrypting anything
    id_number_digest: str | None = Field(default=None, max_length=64, unique=True, index=True)
    id_number_masked: str | None = Field(default=None, max_length=32)
    phone_enc: str | None = Field(default=None, max_length=512)
    phone_masked: str | None = Field(default=None, max_length=32)
    # the year only: a full birth date next to the masked ID number would give the number away
    birth_year: int | None = None
    gender: str | None = Field(default=None, max_length=8)
    guardian_name: str | None = Field(default=None, max_length=64)
    guardian_phone_enc: str | None = Field(default=None, max_length=512)
    status: str = Field(default="guest", max_length=16, description="guest | active | withdrawn")
    registered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Identity(SQLModel, table=True):
    """One account on one channel; several identities may point to one person."""

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=128)
    person_id: int = Field(foreign_key="person.id", index=True)
    active: bool = True
    language: str | None = Field(default=None, max_length=16)
    display_name: str | None = Field(default=None, max_length=128)
    last_inbound_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Organization(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, unique=True)
    kind: str = Field(default="station", max_length=16, description="center | station | team")
    parent_id: int | None = Field(default=None, foreign_key="organization.id")


class Role(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("person_id", "role", "organization_id", name="uq_role"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: str = Field(max_length=16, description="admin | coordinator")
    organization_id: int | None = Field(default=None, foreign_key="organization.id")
    created_at: datetime = Field(default_factory=utcnow)


class ActivityBase(SQLModel):
    title: str = Field(max_length=128)
    description: str = Field(default="", max_length=2000)
    category: str = Field(default="other", max_length=32)
    place: str = Field(default="", max_length=255)
    latitude: float | None = None
    longitude: float | None = None
    start_at: datetime
    end_at: datetime
    capacity: int = Field(default=10, ge=1)
    organization_id: int = Field(foreign_key="organization.id", index=True)


class Activity(ActivityBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    status: str = Field(default="open", max_length=16, description="open | cancelled")
    checkin_code: str | None = Field(default=None, max_length=32, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class Signup(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("activity_id", "person_id", name="uq_signup"),)
    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    status: str = Field(default="confirmed", max_length=16, description="confirmed | waitlist | cancelled")
    checkin_at: datetime | None = None
    checkout_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # added by migration 0014: a coordinator marked that the volunteer did not come
    no_show_at: datetime | None = None


class HourRecord(SQLModel, table=True):
    """One line of the 台账 (service-hours ledger)."""

    __tablename__ = "hour_record"
    # 我的时长: one person's records, newest first, and sums over them (migration 0011), read from the index
    # alone on PostgreSQL (INCLUDE, migration 0017): a person's records are scattered over the heap
    __table_args__ = (Index("ix_hour_record_person_served", "person_id", "served_on", "id",
                            postgresql_include=["approved", "reviewed_at", "hours", "activity_id", "recorded_by",
                                                "source", "note"]),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    activity_id: int | None = Field(default=None, foreign_key="activity.id", index=True)
    hours: float = Field(ge=0)
    served_on: date
    recorded_by: int | None = Field(default=None, foreign_key="person.id")
    # self-reported hours (a visit log, a resident's confirmation) are False until a coordinator of
    # ``organization_id`` approves them; only approved hours count in totals, star levels and exports
    approved: bool = True
    source: str = Field(default="activity", max_length=16)
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    # added by migration 0009: whose coordinators review it; who reviewed it and when (a record
    # reviewed but not approved was rejected)
    organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    reviewed_by: int | None = Field(default=None, foreign_key="person.id")
    reviewed_at: datetime | None = None


class DialogState(SQLModel, table=True):
    """Where a conversation is: kept in the database so any process can continue it."""

    __tablename__ = "dialog_state"
    identity_id: int = Field(foreign_key="identity.id", primary_key=True)
    flow: str | None = Field(default=None, max_length=32)
    step: str | None = Field(default=None, max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # the choices of the last reply ({"label", "value"}), so "2" or a typed label selects one
    choices: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class LinkCode(SQLModel, table=True):
    """A short-lived code that joins a second channel's identity to the same person."""

    __tablename__ = "link_code"
    code: str = Field(max_length=12, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    # the identity that entered the code: linked only once the code's owner confirms (migration 0008)
    claimant_identity_id: int | None = Field(default=None, foreign_key="identity.id")


class LinkFailure(SQLModel, table=True):
    """One wrong link code entered by an identity: too many in an hour lock linking for it."""

    __tablename__ = "link_failure"
    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="identity.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class InboundSeen(SQLModel, table=True):
    """Dedupe key of an inbound message, with the reply it got (a retry gets the same one)."""

    __tablename__ = "inbound_seen"
    channel: str = Field(max_length=16, primary_key=True)
    message_key: str = Field(max_length=160, primary_key=True)
    # the replies as one FieldCipher token (they hold personal data); a list only in rows older than 0008
    reply: str | list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Delivery(SQLModel, table=True):
    """Outbox: every message we send that is not a direct reply."""

    # ``id`` too: the claim orders by (due_at, id) and must read the index in order, not sort (migration 0011)
    __table_args__ = (Index("ix_delivery_due", "status", "channel", "due_at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="identity.id", index=True)
    channel: str = Field(max_length=16)
    text: str = Field(max_length=8000)
    choices: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = Field(default="notice", max_length=32)
    urgent: bool = False
    due_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default="pending", max_length=16, description="pending | sent | failed | held")
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    # added by migration 0004 (reminders): the broadcast a row belongs to; when a sender took it
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    claimed_at: datetime | None = None
    # added by migration 0007: the notice as a message id plus parameters (common.i18n JSON form),
    # rendered in the recipient's language when it is sent; ``text`` is then empty. Choices' labels
    # are stored the same way.
    message: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


# Feature tables live in their own modules and are imported here so that SQLModel.metadata
# (and Alembic) sees every table. Add one import line per module below.

__all__ = [
    "Activity",
    "ActivityBase",
    "Delivery",
    "DialogState",
    "HourRecord",
    "Identity",
    "InboundSeen",
    "LinkCode",
    "LinkFailure",
    "Organization",
    "Person",
    "PersonBase",
    "Role",
    "Signup",
    "utcnow",
]

import models.activity_changes  # noqa: E402,F401  (edits and cancellations of activities)
import models.certificates  # noqa: E402,F401  (志愿服务证明 issued)
import models.corrections  # noqa: E402,F401  (corrections of hour records)
import models.inbound_queue  # noqa: E402,F401  (messages acknowledged under overload, handled later)
import models.membership  # noqa: E402,F401  (a volunteer's organization)
import models.reminders  # noqa: E402,F401  (observances, reminder preferences, broadcasts)
import models.requests  # noqa: E402,F401  (service requests, offers, pairings)
import models.web  # noqa: E402,F401  (web console: login links, sessions)
import models.wechat  # noqa: E402,F401  (WeChat access token, reply pages, template reports)
