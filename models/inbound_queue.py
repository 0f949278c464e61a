"""Messages acknowledged under overload and handled later (``services/inbound_queue.py``).

Imported at the bottom of ``models/__init__.py`` so Alembic sees it; migration 0018 creates it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class InboundQueued(SQLModel, table=True):
    """One message a channel answered at once (WeChat: ``success``) and keeps for a background turn.

    ``payload`` is the neutral message as sealed JSON (it may hold an ID number typed in a registration
    step); ``user_key`` a keyed digest of the sender, so one user's messages run in order without the
    table naming them. ``claimed_until`` is a worker's lease: past it another worker (or this one after a
    restart) takes the row again. The row is deleted in the transaction that queues its reply.
    """

    __tablename__ = "inbound_queue"
    __table_args__ = (UniqueConstraint("channel", "message_key", name="uq_inbound_queue_message"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    message_key: str = Field(max_length=160)
    user_key: str = Field(max_length=64, index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(index=True)
    claimed_until: datetime | None = None
