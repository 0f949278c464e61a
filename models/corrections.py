"""Corrections of hour records (《志愿服务记录与证明出具办法》 Art 12–13: a volunteer may ask for one).

The original ``hour_record`` row is never changed: a correction is a row of its own, linked to the
record, with the new hours (``None`` voids the record), why, who asked and when, and the decision.
A correction a coordinator makes is approved at once (``decided_by`` = that coordinator).

At most one correction of a record is ``approved`` at a time: approving another marks the earlier one
``superseded``. Totals, star levels, the hours summary and the ledger count the approved correction's
hours in place of the record's (``services.hours.effective_hours``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, event, select, text
from sqlmodel import Field, SQLModel

from models import HourRecord, utcnow

STATUSES = ("pending", "approved", "rejected", "superseded")
REASON_MAX = 200


class HourCorrection(SQLModel, table=True):
    __tablename__ = "hour_correction"
    # the correction in effect of a record (joined into every sum) and a record's pending requests
    # (INCLUDE, migration 0017: the probe of 我的时长's sums reads no heap page on PostgreSQL)
    __table_args__ = (Index("ix_hour_correction_record_status", "record_id", "status",
                            postgresql_include=["hours", "id"]),
                      # a person's corrections in effect (migration 0019): 我的时长 sums the person's records as
                      # they were and adds what these few corrections change, instead of probing every record
                      Index("ix_hour_correction_person_approved", "person_id",
                            postgresql_include=["record_id", "hours"],
                            postgresql_where=text("status = 'approved'"), sqlite_where=text("status = 'approved'")))
    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="hour_record.id")
    # the record's person (hour_record.person_id, which never changes: a person with hours is never merged
    # away, services/linking.py) — not who asked, who may be a coordinator
    person_id: int = Field(foreign_key="person.id")
    # the record's organization when asked (its coordinators decide): the pending list filters by it
    organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    old_hours: float = Field(ge=0, description="what the record counted when the correction was asked")
    hours: float | None = Field(default=None, ge=0, description="the corrected hours; None voids the record")
    reason: str = Field(max_length=REASON_MAX)
    requested_by: int = Field(foreign_key="person.id")
    requested_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default="pending", max_length=16, description="pending | approved | rejected | superseded")
    decided_by: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = None
    decision_note: str = Field(default="", max_length=REASON_MAX)


@event.listens_for(HourCorrection, "before_insert")
def _person_of_record(mapper: Any, connection: Any, correction: HourCorrection) -> None:
    """A correction made without its record's person (services/corrections.py gives it) gets it from the
    record in the INSERT itself: a correction missing from its person's sums would count wrong silently."""
    if correction.person_id is None:
        correction.person_id = (select(HourRecord.person_id)  # type: ignore[assignment]
                                .where(HourRecord.id == correction.record_id).scalar_subquery())
