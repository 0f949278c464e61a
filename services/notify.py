"""Writing notices to the outbox (``delivery`` rows); senders or the next reply deliver them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Text, from_json, render, to_json
from models import Delivery
from services.people import active_identities

# Channels with no push sender: their notices wait for the user's next message.
INLINE_ONLY_CHANNELS = frozenset({"console"})


def _old_form(lang: str | None, zh: str, en: str) -> str:
    """Transitional: the (zh, en) form without a catalog (繁體 readers get the 简体 text)."""
    return en if lang == "en" else zh


async def notify_person(
    session: AsyncSession,
    *,
    person_id: int,
    now: datetime,
    message: Text | None = None,
    zh: str = "",
    en: str = "",
    source: str = "notice",
    # (label, value); the old form (简体 label, English label, value) goes with zh/en
    choices: list[tuple[Text, str]] | list[tuple[str, str, str]] | None = None,
    urgent: bool = False,
) -> list[Delivery]:
    """One outbox row per active identity of the person, rendered in its language when sent.

    ``zh``/``en`` (with three-part choices) are the old form, kept only until every caller passes
    ``message``: the text is stored as it is, English for English readers and 简体 otherwise.
    """
    rows = []
    for identity in await active_identities(session, person_id=person_id):
        lang = identity.language
        if message is not None:
            text, stored, labels = "", to_json(message), [
                {"label": to_json(label), "value": value} for label, value in choices or []]  # type: ignore[misc]
        else:
            text, stored = _old_form(lang, zh, en), None
            labels = [{"label": _old_form(lang, z, e), "value": v} for z, e, v in choices or []]  # type: ignore[misc]
        row = Delivery(
            identity_id=identity.id,
            channel=identity.channel,
            text=text,
            message=stored,
            choices=labels,
            source=source,
            urgent=urgent,
            due_at=now,
            status="held" if identity.channel in INLINE_ONLY_CHANNELS else "pending",
            created_at=now,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def claim_held_notices(session: AsyncSession, *, identity_id: int, now: datetime) -> list[Delivery]:
    """Notices that could not be pushed: hand them to the reply and mark them sent."""
    rows = list(
        await session.exec(
            select(Delivery)
            .where(Delivery.identity_id == identity_id, Delivery.status == "held", Delivery.due_at <= now)
            .order_by(Delivery.id)
        )
    )
    for row in rows:
        row.status = "sent"
        row.sent_at = now
        row.attempts += 1
        session.add(row)
    return rows


def notice_text(row: Delivery, lang: str | None) -> str:
    """An outbox row's text in the recipient's language (a stored message id, or the plain text)."""
    if row.message is not None:
        return render(from_json(row.message), lang)
    return row.text


def notice_choices(choices: list[dict], lang: str | None) -> list[dict[str, str]]:
    return [{"label": render(c["label"], lang), "value": c["value"]} for c in choices]
