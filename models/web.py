"""The web console's sign-in: one-time login links and browser sessions.

Imported at the bottom of ``models/__init__.py`` so Alembic sees them; migration 0016 creates them.
Only SHA-256 hashes of the tokens are stored: a copy of the database opens no session.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models import utcnow


class WebLoginLink(SQLModel, table=True):
    """A one-time sign-in link (``/admin/login/<token>``), valid for minutes, used at most once."""

    __tablename__ = "web_login_link"
    token_hash: str = Field(max_length=64, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    # the identity that asked for it: its ADMINS (bootstrap) entry makes the session an admin's
    identity_id: int | None = Field(default=None, foreign_key="identity.id")
    expires_at: datetime
    used_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds the token, the row its hash."""

    __tablename__ = "web_session"
    token_hash: str = Field(max_length=64, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    identity_id: int | None = Field(default=None, foreign_key="identity.id")
    expires_at: datetime = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime | None = None
