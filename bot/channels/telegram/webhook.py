"""``POST /telegram``: who may post an update, and what a well-formed one is, before aiogram sees it.

aiogram's ``SimpleRequestHandler`` compares the secret header with ``secrets.compare_digest`` on
``str`` (a non-ASCII header raised ``TypeError``: a 500 before authentication) and parses the JSON
inside the request (malformed JSON: a 500). Here the header is compared as bytes (401 when it
differs), the body must be a JSON object that validates as an ``Update`` whose integers fit in 64
bits (else 400, one log line), and only then is the update handled in the background while Telegram
gets its 200 at once.

Handled means admitted (``bot.admission``, as WeChat's turns): at most ``concurrency`` updates run at once
and the rest wait in a bounded queue, so a burst never piles up unbounded tasks. Past the queue's bound
(or its expected wait past ``max_wait``) the POST is answered 503 and Telegram delivers the update again
later; a redelivery of an update still queued or running joins it (the core's dedupe covers the rest).
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import math
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from bot.admission import Admission, Decision

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # Telegram's updates are a few kB; the web app's own cap is the same
# Telegram's ids and dates fit in a signed 64-bit integer (ids use at most 52 bits); anything wider
# cannot reach a BIGINT column and is not from Telegram
INT64 = 2**63


class Malformed(ValueError):
    pass


def _check_integers(value: Any) -> None:
    """Walks the parsed JSON iteratively (its depth is the sender's choice, the stack is ours)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -INT64 <= item < INT64:
                raise Malformed("integer out of range")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_update(body: bytes, bot: Bot) -> Update:
    """The update in a webhook body; raises ``Malformed`` (or a subclass of ValueError) when it is not one."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Malformed(f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise Malformed("not a JSON object")
    _check_integers(raw)
    try:
        return Update.model_validate(raw, context={"bot": bot})
    except (ValidationError, RecursionError) as exc:
        raise Malformed(f"not an Update ({exc.__class__.__name__})") from None


async def _nothing(_result: None) -> None:
    """An update is never 'late': its replies go out by the Bot API whenever it finishes."""


class WebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler with the secret check and the body parsing made total, and admission."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, *, admission: Admission, secret_token: str | None = None,
                 **data: Any) -> None:
        super().__init__(dispatcher=dispatcher, bot=bot, secret_token=secret_token, **data)
        self.admission = admission

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        if not self.secret_token:
            return True
        # aiohttp decodes header bytes that are not UTF-8 as surrogates: encode them back the same way
        given = telegram_secret_token.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self.secret_token.encode("utf-8"))

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), bot):
            log.info("telegram POST from %s rejected (401): wrong secret token", request.remote)
            return web.Response(body="Unauthorized", status=401)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            log.info("telegram POST from %s rejected (413): body too large", request.remote)
            return web.Response(status=413, text="body too large")
        try:
            update = parse_update(await request.read(), bot)
        except web.HTTPRequestEntityTooLarge:
            log.info("telegram POST from %s rejected (413): body too large", request.remote)
            return web.Response(status=413, text="body too large")
        except Malformed as exc:
            log.warning("telegram POST from %s rejected (400): %s", request.remote, exc)
            return web.Response(status=400, text=str(exc))
        key = f"u{update.update_id}"
        if self.admission.job(key) is None:  # else a redelivery of an update still queued or running
            if self.admission.decide(math.inf) is Decision.BUSY:
                self.admission.refused()
                return web.Response(status=503, text="busy")  # not acknowledged: Telegram sends it again later
            self.admission.submit(key, functools.partial(self._feed, bot, update), late=False, finish_late=_nothing)
        return web.json_response({})

    async def _feed(self, bot: Bot, update: Update) -> None:
        try:
            await self.dispatcher.feed_update(bot, update, **self.data)
        except Exception:  # the update was accepted (200): a failure is logged, never an unhandled task
            log.exception("telegram update %s failed", update.update_id)
