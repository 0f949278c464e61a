"""Neutral replies → Telegram messages: inline keyboards from choices and links, texts split under 4096.

Shared by the conversational adapter (``channel.deliver``) and the outbox sender (``sender``) so a pushed
message looks like an answered one. Keyboards are the Bot API's JSON (``{"inline_keyboard": [[button…]…]}``),
posted as they are: no aiogram objects on the way out (``api``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.channels.render import render_text
from handlers.messages import Choice, Link, Reply

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4096  # Telegram's limit for a text message
MAX_CALLBACK_BYTES = 64  # Telegram's limit for callback_data
# short labels (pagination arrows, yes/no) share a row; long ones get their own
_SHORT_LABEL = 8

Keyboard = dict[str, Any]  # an InlineKeyboardMarkup as JSON


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    text: str
    keyboard: Keyboard | None = None


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a line break (else a space) where one is near."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def keyboard_for(choices: Sequence[Choice], links: Sequence[Link] = ()) -> Keyboard | None:
    """Choice values go out as callback_data and come back as ``Inbound.payload``."""
    rows: list[list[dict[str, str]]] = []
    for choice in choices:
        button = {"text": choice.label, "callback_data": choice.value}
        if rows and len(choice.label) <= _SHORT_LABEL and len(rows[-1]) < 3 and all(
            len(b["text"]) <= _SHORT_LABEL and b.get("callback_data") for b in rows[-1]
        ):
            rows[-1].append(button)
        else:
            rows.append([button])
    rows += [[{"text": link.label, "url": link.url}] for link in links]
    return {"inline_keyboard": rows} if rows else None


def fits_callback_data(choices: Sequence[Choice]) -> bool:
    return all(0 < len(c.value.encode()) <= MAX_CALLBACK_BYTES for c in choices)


def render_reply(reply: Reply) -> list[TelegramMessage]:
    """One reply → one or more messages; the keyboard rides on the last piece."""
    if fits_callback_data(reply.choices):
        text, markup = reply.text, keyboard_for(reply.choices, reply.links)
    else:
        # the core promises ≤ 64-byte values; if one is longer, numbered lines lose nothing
        # (the engine maps a typed number to the choice)
        log.error("choice value over %d bytes; sending numbered choices instead", MAX_CALLBACK_BYTES)
        text, markup = render_text(Reply(text=reply.text, choices=reply.choices)), keyboard_for([], reply.links)
    pieces = split_text(text or "…")
    return [TelegramMessage(piece, markup if i == len(pieces) - 1 else None) for i, piece in enumerate(pieces)]
