"""What coordinators changed about a published activity: each edit and a cancellation, with its reason."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models import utcnow

CHANGE_KINDS = ("edit", "cancel")
EDITABLE_FIELDS = ("title", "time", "place", "capacity", "description")


class ActivityChange(SQLModel, table=True):
    """One change of an activity (migration 0014): the old and new values as stored text, who and why."""

    __tablename__ = "activity_change"
    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    changed_by: int | None = Field(default=None, foreign_key="person.id")
    kind: str = Field(default="edit", max_length=16, description="edit | cancel")
    field: str = Field(default="", max_length=16, description="title | time | place | capacity | description")
    old_value: str = Field(default="", max_length=2000)
    new_value: str = Field(default="", max_length=2000)
    reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
