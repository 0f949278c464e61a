"""Residents' service requests (菜单式服务 / 点单), offers to volunteers, and 结对帮扶 pairings.

Imported at the bottom of ``models/__init__.py`` so SQLModel.metadata (and Alembic) sees the tables.
Personal details of a request (address, phone) are stored encrypted with the engine's FieldCipher;
only the masked phone is kept readable.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models import utcnow

# Status codes of a request, in lifecycle order, with the words residents see.
REQUEST_STATUSES: dict[str, tuple[str, str]] = {
    "pending_review": ("待审核", "Awaiting review"),
    "approved": ("待接单", "Approved, looking for a volunteer"),
    "assigned": ("已派单", "Assigned"),
    "in_progress": ("服务中", "In progress"),
    "done": ("已完成", "Done, awaiting your confirmation"),
    "rated": ("已评价", "Rated"),
    "cancelled": ("已取消", "Cancelled"),
    "rejected": ("已驳回", "Rejected"),
}
OPEN_STATUSES: tuple[str, ...] = ("pending_review", "approved", "assigned", "in_progress")
ACTIVE_ASSIGNMENT_STATUSES: tuple[str, ...] = ("assigned", "in_progress")


class ServiceRequest(SQLModel, table=True):
    __tablename__ = "service_request"
    __table_args__ = (Index("ix_service_request_status", "status", "organization_id"),)
    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="person.id", index=True)
    category: str = Field(default="other", max_length=32)
    description: str = Field(default="", max_length=1000)
    community: str = Field(default="", max_length=128)
    address_enc: str | None = Field(default=None, max_length=1024)
    contact_name: str = Field(default="", max_length=64)
    phone_enc: str | None = Field(default=None, max_length=512)
    phone_masked: str | None = Field(default=None, max_length=32)
    preferred_time: str = Field(default="", max_length=128)
    notes: str = Field(default="", max_length=500)
    status: str = Field(default="pending_review", max_length=16)
    reason: str | None = Field(default=None, max_length=500, description="why it was rejected or cancelled")
    organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    reviewed_by: int | None = Field(default=None, foreign_key="person.id")
    assignee_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    hours: float | None = None
    rating: int | None = None
    comment: str | None = Field(default=None, max_length=500)
    hour_record_id: int | None = Field(default=None, foreign_key="hour_record.id")
    created_at: datetime = Field(default_factory=utcnow)
    reviewed_at: datetime | None = None
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    done_at: datetime | None = None
    confirmed_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class RequestOffer(SQLModel, table=True):
    """One volunteer asked to take one request: offered → accepted / declined / taken (someone else
    was faster) / cancelled (the resident withdrew the request)."""

    __tablename__ = "request_offer"
    __table_args__ = (UniqueConstraint("request_id", "volunteer_id", name="uq_request_offer"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", index=True)
    volunteer_id: int = Field(foreign_key="person.id", index=True)
    status: str = Field(default="offered", max_length=16, description="offered | accepted | declined | taken | cancelled")
    offered_at: datetime = Field(default_factory=utcnow)
    responded_at: datetime | None = None


class Pairing(SQLModel, table=True):
    """结对帮扶: a coordinator pairs a volunteer with a resident for a visit every ``interval_days``."""

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    coordinator_id: int | None = Field(default=None, foreign_key="person.id")
    volunteer_id: int = Field(foreign_key="person.id", index=True)
    # the resident often has no chat account (an 80-year-old neighbour): a name, and a person if known
    resident_name: str = Field(max_length=64)
    resident_id: int | None = Field(default=None, foreign_key="person.id")
    interval_days: int = Field(default=7, ge=1)
    active: bool = True
    last_visit_at: datetime | None = None
    volunteer_reminded_at: datetime | None = None
    coordinator_reminded_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class VisitLog(SQLModel, table=True):
    __tablename__ = "visit_log"
    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="pairing.id", index=True)
    volunteer_id: int = Field(foreign_key="person.id", index=True)
    visited_on: date
    hours: float = Field(ge=0)
    note: str = Field(default="", max_length=500)
    hour_record_id: int | None = Field(default=None, foreign_key="hour_record.id")
    created_at: datetime = Field(default_factory=utcnow)


__all__ = [
    "ACTIVE_ASSIGNMENT_STATUSES",
    "OPEN_STATUSES",
    "REQUEST_STATUSES",
    "Pairing",
    "RequestOffer",
    "ServiceRequest",
    "VisitLog",
]
