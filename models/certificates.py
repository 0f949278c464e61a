"""志愿服务证明: each certificate issued, so ``/verify/<number>`` can confirm it (or say it was revoked).

The facts printed on the certificate are kept as they were on the day it was issued (``facts``): the
name, the masked ID number, and one line per service (date, what, organization, hours, recorder).
A later correction of the ledger does not change a certificate already handed out; a new one is issued.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models import utcnow


class Certificate(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # digits with a check digit (services.certificates.new_number): unguessable, typed from the paper
    number: str = Field(max_length=32, unique=True, index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    period_start: date
    period_end: date
    total_hours: float = Field(ge=0)
    record_count: int = 0
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    issued_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoked_reason: str | None = Field(default=None, max_length=500)
