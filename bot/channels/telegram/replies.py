"""A turn's replies → Telegram: text pieces (``render``) and documents, in order, as Bot API JSON (``api``).

A 429 is waited out (Telegram limits the whole bot meanwhile) up to ``MAX_FLOOD_WAIT``; other errors
raise ``api.BotApiError`` (``BotForbidden`` when the user blocked the bot or never started it), which
the caller handles or logs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.channels.telegram.api import BotApi, BotRetryAfter
from bot.channels.telegram.render import render_reply
from handlers.messages import Document, Reply

log = logging.getLogger(__name__)

MAX_FLOOD_WAIT = 60.0  # a conversation reply waits out a 429 up to this long, then is logged as lost
MAX_CAPTION = 1024  # Telegram's limit for a document's caption
FLOOD_ATTEMPTS = 3

# loads the file behind a reply's document (a certificate PDF); None → it is not there (any more)
DocumentLoader = Callable[[Document], Awaitable[bytes | None]]


async def patiently(send: Callable[[], Awaitable[Any]], chat_id: int | str) -> bool:
    """One send, a 429 waited out (it blocks the whole bot anyway); False after repeated 429."""
    for _attempt in range(FLOOD_ATTEMPTS):
        try:
            await send()
            return True
        except BotRetryAfter as exc:
            wait = exc.retry_after or 1.0
            if wait > MAX_FLOOD_WAIT:
                raise
            log.warning("telegram 429 while answering; waiting %ss", wait)
            await asyncio.sleep(wait)
    log.error("gave up answering chat %s after repeated 429", chat_id)
    return False


def _document_send(api: BotApi, chat_id: int | str, document: Document,
                   data: bytes | None) -> Callable[[], Awaitable[Any]] | None:
    if data is not None:
        fields = {"chat_id": chat_id, "caption": document.label[:MAX_CAPTION]}
        return functools.partial(api.call_with_file, "sendDocument", fields, "document", data, document.filename)
    if document.url:
        return functools.partial(api.call, "sendMessage", {"chat_id": chat_id, "text": f"{document.label}: {document.url}"})
    return None


async def deliver(api: BotApi, chat_id: int | str, replies: Sequence[Reply],
                  documents: DocumentLoader | None = None) -> None:
    """Send replies in order; a reply's documents follow it as files (sendDocument)."""
    for reply in replies:
        for piece in render_reply(reply):
            body: dict[str, Any] = {"chat_id": chat_id, "text": piece.text}
            if piece.keyboard is not None:
                body["reply_markup"] = piece.keyboard
            if not await patiently(functools.partial(api.call, "sendMessage", body), chat_id):
                return
        for document in reply.documents:
            data = await documents(document) if documents is not None else None
            send = _document_send(api, chat_id, document, data)
            if send is None:
                log.error("document %s for chat %s could not be loaded", document.kind, chat_id)
                continue
            if not await patiently(send, chat_id):
                return
