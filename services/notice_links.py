"""Signed links to one notice (``/n/<token>``): the whole text of an outbox row, behind a short
WeChat template message whose fields hold at most 20 characters each.

The token is the delivery id and an expiry, with an HMAC: nothing is stored, and a guessed or
altered id does not open anyone's notice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from models import Delivery, Identity
from services.notify import notice_choices, notice_text

NOTICE_TTL = timedelta(days=30)
FIELD_CHARS = 20  # WeChat's template rules since 2023-05-04: a field shows at most 20 characters


def _mac(secret: str, payload: str) -> str:
    key = hashlib.sha256(b"volunteer-bot/notice-link/" + secret.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:24]


def sign_notice(delivery_id: int, *, secret: str, now: datetime, ttl: timedelta = NOTICE_TTL) -> str:
    payload = f"{delivery_id}.{int((now + ttl).timestamp())}"
    raw = f"{payload}.{_mac(secret, payload)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def verify_notice(token: str, *, secret: str, now: datetime) -> int | None:
    """The delivery id behind a token, or None when it is forged, garbled or expired."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        delivery_id, expires, mac = raw.split(".")
        if not hmac.compare_digest(mac, _mac(secret, f"{delivery_id}.{expires}")):
            return None
        if int(expires) <= now.timestamp():
            return None
        return int(delivery_id)
    except (ValueError, UnicodeDecodeError):
        return None


def short_field(text: str, limit: int = FIELD_CHARS) -> str:
    """One template field: the first line, no line breaks, at most ``limit`` characters (… when cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


async def notice_for_page(session: AsyncSession, *, delivery_id: int) -> tuple[Delivery, str, list[str], str] | None:
    """(the row, its whole text and choice labels in the recipient's language, that language)."""
    row = await session.get(Delivery, delivery_id)
    if row is None:
        return None
    identity = await session.get(Identity, row.identity_id)
    lang = (identity.language if identity else None) or "zh-Hans"
    labels = [c["label"] for c in notice_choices(row.choices, lang)]
    return row, notice_text(row, lang), labels, lang
