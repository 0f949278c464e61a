"""Sign-in to the web console without passwords: a one-time link, then a browser session.

Tokens are random (``secrets.token_urlsafe``) and only their SHA-256 hashes are stored. A link is
valid ``LINK_TTL`` and opens one session; a session lasts ``SESSION_TTL`` (sliding is not needed:
a new link is one chat message away). The CSRF token of a session is an HMAC of its token, so it
needs no column and changes with every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.web import WebLoginLink, WebSession

LINK_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=8)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_login_link(session: AsyncSession, *, person_id: int, identity_id: int | None,
                            now: datetime, ttl: timedelta = LINK_TTL) -> str:
    """A new one-time sign-in token for the person (the caller builds the URL around it)."""
    token = secrets.token_urlsafe(32)
    session.add(WebLoginLink(token_hash=token_hash(token), person_id=person_id, identity_id=identity_id,
                             expires_at=now + ttl, created_at=now))
    await session.flush()
    return token


@dataclass(frozen=True, slots=True)
class Redeemed:
    """The outcome of opening a login link: a session token, or why not ("unknown", "used", "expired")."""

    session_token: str | None
    reason: str | None = None


async def redeem_login_link(session: AsyncSession, *, token: str, now: datetime,
                            ttl: timedelta = SESSION_TTL) -> Redeemed:
    link = (await session.exec(select(WebLoginLink).where(WebLoginLink.token_hash == token_hash(token))
                               .with_for_update())).first()
    if link is None:
        return Redeemed(None, "unknown")
    if link.used_at is not None:
        return Redeemed(None, "used")
    if link.expires_at <= now:
        return Redeemed(None, "expired")
    link.used_at = now
    session.add(link)
    session_token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=token_hash(session_token), person_id=link.person_id,
                           identity_id=link.identity_id, expires_at=now + ttl, created_at=now, last_seen_at=now))
    await session.flush()
    return Redeemed(session_token)


async def active_session(session: AsyncSession, *, token: str, now: datetime) -> WebSession | None:
    """The session behind a cookie, or None when it is unknown, signed out or expired."""
    if not token:
        return None
    row = await session.get(WebSession, token_hash(token))
    if row is None or row.expires_at <= now:
        return None
    return row


async def end_session(session: AsyncSession, *, token: str) -> None:
    await session.exec(delete(WebSession).where(col(WebSession.token_hash) == token_hash(token)))  # type: ignore[call-overload]


async def purge_expired(session: AsyncSession, *, now: datetime) -> None:
    """Forget expired sessions and links (called when a link is redeemed; cheap with the index)."""
    await session.exec(delete(WebSession).where(col(WebSession.expires_at) <= now))  # type: ignore[call-overload]
    await session.exec(delete(WebLoginLink).where(col(WebLoginLink.expires_at) <= now - timedelta(days=1)))  # type: ignore[call-overload]


def csrf_token(session_token: str, *, secret: str) -> str:
    key = hashlib.sha256(b"volunteer-bot/web-csrf/" + secret.encode()).digest()
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(session_token: str, submitted: str, *, secret: str) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token(session_token, secret=secret), submitted)
