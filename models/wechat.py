"""WeChat official account tables: the shared access token, reply pages, template-send reports.

Imported at the bottom of ``models/__init__.py`` so Alembic sees them; migration 0002 creates them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from models import utcnow


class WeChatAccessToken(SQLModel, table=True):
    """One access token per app id, shared by every process (a new token invalidates the old one).

    ``version`` is bumped on every refresh so a process can tell that someone else already refreshed.
    """

    __tablename__ = "wechat_access_token"
    app_id: str = Field(max_length=64, primary_key=True)
    token: str = Field(default="", max_length=1024)
    expires_at: datetime | None = None
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class WeChatReplyPages(SQLModel, table=True):
    """The rest of a passive reply longer than one WeChat text message, served on "下一页".

    ``last_message_key``/``last_page`` remember which "下一页" message took which page, so a WeChat
    retry of that message gets the same page instead of the following one.
    """

    __tablename__ = "wechat_reply_pages"
    openid: str = Field(max_length=128, primary_key=True)
    pages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_message_key: str | None = Field(default=None, max_length=160)
    last_page: str | None = Field(default=None, max_length=4000)
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class WeChatTemplateJob(SQLModel, table=True):
    """A TEMPLATESENDJOBFINISH report: whether a template message reached the user."""

    __tablename__ = "wechat_template_job"
    msg_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    openid: str = Field(max_length=128, index=True)
    status: str = Field(max_length=64, description="success | failed:user block | failed: system failed")
    reported_at: datetime = Field(default_factory=utcnow)


class WeChatNonce(SQLModel, table=True):
    """A signed callback already accepted: its (timestamp, nonce) and a digest of its body.

    Kept until its timestamp leaves the replay window, in the database so every worker process sees
    it: the same signed request again (a retry, or a replay) is answered from the message dedupe;
    the same signature with another body is refused.
    """

    __tablename__ = "wechat_nonce"
    nonce_key: str = Field(max_length=64, primary_key=True, description="sha256 hex of timestamp:nonce")
    body_digest: str = Field(max_length=64)
    expires_at: datetime = Field(index=True)


class WeChatLateAnswer(SQLModel, table=True):
    """A message whose reply followed as a customer-service message: a WeChat retry gets `success`.

    Written with the late reply's outbox row, so a retry reaching another process, or this one after
    a restart, does not deliver the reply a second time as a passive reply.
    """

    __tablename__ = "wechat_late_answer"
    message_key: str = Field(max_length=160, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
