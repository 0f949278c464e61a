"""``POST /telegram``: who may post an update, what a well-formed one is, and admitting it.

The secret header is compared as bytes (401 when it differs or is not ASCII: aiohttp hands header bytes
that are not UTF-8 over as surrogates, encoded back here the same way); the body is capped (413), must be
JSON (400 otherwise, deep nesting included) and is read for the fields the channel uses (``convert``:
wrong types, ids beyond 64 bits → 400, one log line). Nothing else of the update is parsed, no aiogram
object is built: the update goes to the channel's handler as ``convert.Update``.

Handled means admitted (``bot.admission``, as WeChat's turns): at most ``concurrency`` updates run at once
and the rest wait in a bounded queue, so a burst never piles up unbounded tasks; Telegram gets its 200 at
once. Past the queue's bound (or its expected wait past ``max_wait``) the POST is answered 503 and Telegram
delivers the update again later; a redelivery of an update still queued or running joins it (the core's
dedupe covers the rest).
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.admission import Admission, Decision
from bot.channels.telegram.convert import Malformed, Update, parse_update

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # Telegram's updates are a few kB; the web app's own cap is the same
ACKNOWLEDGED = b"{}"  # the 200's body (Telegram reads only the status)

UpdateHandler = Callable[[Update], Awaitable[None]]


def parse_body(body: bytes) -> Update:
    """The update in a webhook body; raises ``Malformed`` when it is not one the channel can read."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Malformed(f"not JSON ({exc.__class__.__name__})") from None
    return parse_update(raw)


async def _nothing(_result: None) -> None:
    """An update is never 'late': its replies go out by the Bot API whenever it finishes."""


class WebhookHandler:
    def __init__(self, handle_update: UpdateHandler, *, admission: Admission, secret_token: str | None = None) -> None:
        """``handle_update`` runs one admitted update to its end (it logs its own failures)."""
        self.handle_update = handle_update
        self.admission = admission
        self._secret = secret_token.encode("utf-8") if secret_token else None

    def register(self, app: web.Application, *, path: str) -> None:
        app.router.add_post(path, self.handle)

    def verify_secret(self, given: str) -> bool:
        if self._secret is None:
            return True
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._secret)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.verify_secret(request.headers.get(SECRET_HEADER, "")):
            log.info("telegram POST from %s rejected (401): wrong secret token", request.remote)
            return web.Response(body=b"Unauthorized", status=401)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            log.info("telegram POST from %s rejected (413): body too large", request.remote)
            return web.Response(status=413, text="body too large")
        try:
            update = parse_body(await request.read())
        except web.HTTPRequestEntityTooLarge:
            log.info("telegram POST from %s rejected (413): body too large", request.remote)
            return web.Response(status=413, text="body too large")
        except Malformed as exc:
            log.warning("telegram POST from %s rejected (400): %s", request.remote, exc)
            return web.Response(status=400, text=str(exc))
        key = update.key
        if self.admission.job(key) is None:  # else a redelivery of an update still queued or running
            if self.admission.decide(math.inf) is Decision.BUSY:
                self.admission.refused()
                return web.Response(status=503, text="busy")  # not acknowledged: Telegram sends it again later
            self.admission.submit(key, functools.partial(self.handle_update, update), late=False,
                                  finish_late=_nothing)
        return web.Response(body=ACKNOWLEDGED, content_type="application/json")
