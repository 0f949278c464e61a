"""Membership: the one organization a volunteer belongs to (chosen at registration, changed in the profile).

A person has at most one membership (``person_id`` is the key). Broadcasts, request matching and the
coordinators' volunteer list read it; the hierarchy (``Organization.parent_id``) makes a member of a
station also reachable from its center.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models import utcnow


class Membership(SQLModel, table=True):
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    joined_at: datetime = Field(default_factory=utcnow)
