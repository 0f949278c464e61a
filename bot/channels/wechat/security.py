"""Who may talk to ``/wechat``: URL signature, replay window, safe-mode decrypt/encrypt, XML hygiene.

Plaintext mode: the query's ``signature`` covers (token, timestamp, nonce) only, not the body.
Safe / compatible mode (``WECHAT_ENCODING_AES_KEY`` set): every POST must carry
``encrypt_type=aes``, a ``msg_signature`` over the ``<Encrypt>`` element and that element; only its
decrypted content is read (compatible mode's plaintext copy is ignored), so a captured URL cannot
carry a forged body. In both modes a signed (timestamp, nonce) is remembered in the database for
the replay window (``ReplayGuard``): the same request again is answered by the message dedupe
without a second effect, the same signature with another body is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.parsers.expat import ExpatError

from sqlalchemy.ext.asyncio import AsyncEngine
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from bot.channels.wechat.settings import WeChatSettings
from services.wechat_replay import SignedCallback, body_digest, nonce_key, remember_nonces

REPLAY_WINDOW_SECONDS = 300
MAX_QUERY_FIELD = 128  # timestamps, nonces and signatures are short; longer ones are not WeChat's
PURGE_EVERY = 64  # remembered nonces past the window are deleted once per 64 requests of a process
_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Security:
    """Checks a callback's query and body; decrypts in safe/compatible mode and encrypts replies."""

    def __init__(self, settings: WeChatSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.token = settings.wechat_token
        self.crypto = (WeChatCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)
                       if settings.wechat_encoding_aes_key else None)
        self.clock = clock

    def check_timestamp(self, timestamp: str) -> None:
        if len(timestamp) > MAX_QUERY_FIELD:
            raise Rejected(403, "bad timestamp")
        try:
            age = self.clock() - int(timestamp)
        except ValueError:
            raise Rejected(403, "bad timestamp") from None
        if abs(age) > REPLAY_WINDOW_SECONDS:
            raise Rejected(403, f"timestamp outside the {REPLAY_WINDOW_SECONDS} s window")

    def check_url_signature(self, query: Mapping[str, str]) -> None:
        signature, timestamp, nonce = query.get("signature"), query.get("timestamp"), query.get("nonce")
        if not (signature and timestamp and nonce):
            raise Rejected(403, "missing signature")
        if max(len(signature), len(nonce)) > MAX_QUERY_FIELD:
            raise Rejected(403, "bad signature")
        try:
            check_signature(self.token, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise Rejected(403, "bad signature") from None
        self.check_timestamp(timestamp)

    def plaintext(self, body: bytes, query: Mapping[str, str]) -> tuple[bytes, bool]:
        """The message XML, and whether the reply must be encrypted (safe / compatible mode)."""
        if _DECLARATIONS.search(body):
            raise Rejected(400, "XML declarations (DOCTYPE/ENTITY) are not accepted")
        if query.get("encrypt_type", "raw").lower() != "aes":
            if self.crypto is not None:
                # safe mode: the URL signature does not cover the body, so a plaintext body is not WeChat's
                raise Rejected(403, "plaintext message but safe mode is on (WECHAT_ENCODING_AES_KEY is set)")
            self.check_url_signature(query)
            return body, False
        if self.crypto is None:
            raise Rejected(400, "encrypted message but WECHAT_ENCODING_AES_KEY is not set")
        msg_signature, timestamp, nonce = query.get("msg_signature"), query.get("timestamp"), query.get("nonce")
        if not (msg_signature and timestamp and nonce):
            raise Rejected(403, "missing msg_signature")
        if max(len(msg_signature), len(nonce)) > MAX_QUERY_FIELD:
            raise Rejected(403, "bad msg_signature")
        self.check_timestamp(timestamp)
        try:
            plain = self.crypto.decrypt_message(body.decode("utf-8"), msg_signature, timestamp, nonce)
        except InvalidSignatureException:
            raise Rejected(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise Rejected(403, "message for another app id") from None
        except (ExpatError, KeyError, ValueError, TypeError, IndexError, UnicodeError, AttributeError,
                RecursionError) as exc:
            raise Rejected(400, f"cannot decrypt ({exc.__class__.__name__})") from None
        data = plain.encode("utf-8")
        if _DECLARATIONS.search(data):
            raise Rejected(400, "XML declarations (DOCTYPE/ENTITY) are not accepted")
        return data, True

    def encrypt(self, xml: str, nonce: str) -> str:
        assert self.crypto is not None
        return self.crypto.encrypt_message(xml, nonce, str(int(self.clock())))


@dataclass(slots=True)
class _Waiting:
    callback: SignedCallback
    stored: asyncio.Future[str | None]  # the body digest the database holds for the key


class ReplayGuard:
    """Signed (timestamp, nonce) pairs seen within the replay window, shared by every process.

    Group commit: the callbacks that arrive while one write is queued or running are written
    together by the next one (one transaction: an INSERT … RETURNING, and a SELECT only when a pair
    was seen before), and each request waits for the write that holds its pair, so a pair is in the
    database before its message reaches the core, as with one write per request. On SQLite the write queues with the turns for the single writer
    (``write_slot``), and what arrives meanwhile joins it.
    """

    def __init__(self, database: AsyncEngine, *, clock: Callable[[], float] = time.time,
                 write_slot: Callable[[], contextlib.AbstractAsyncContextManager[None]] = contextlib.nullcontext) -> None:
        self.database = database  # a connection, not a session: the pairs are never ORM objects
        self.clock = clock
        self.write_slot = write_slot
        self._waiting: dict[str, _Waiting] = {}
        self._writer: asyncio.Task[None] | None = None
        self._since_purge = 0

    async def check(self, query: Mapping[str, str], body: bytes) -> None:
        """Call after the signature was checked. Raises ``Rejected(403)`` for a seen signature with another body."""
        timestamp, nonce = query["timestamp"], query["nonce"]
        expires_at = datetime.fromtimestamp(int(timestamp) + REPLAY_WINDOW_SECONDS + 1, UTC)
        callback = SignedCallback(nonce_key(timestamp, nonce), body_digest(body), expires_at)
        # the same pair twice before its write (WeChat's retry, or a replay): both wait for the first one's
        waiting = self._waiting.get(callback.nonce_key)
        if waiting is None:
            waiting = _Waiting(callback, asyncio.get_running_loop().create_future())
            self._waiting[callback.nonce_key] = waiting
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_waiting(), name="wechat-replay-guard")
        # shielded: a request that goes away must not cancel the result others wait for
        if await asyncio.shield(waiting.stored) != callback.body_digest:
            raise Rejected(403, "signature already used for another body (replay)")

    async def _write_waiting(self) -> None:
        while self._waiting:
            async with self.write_slot():
                batch, self._waiting = self._waiting, {}  # taken once the slot is ours: what came meanwhile joins
                try:
                    stored = await self._write([waiting.callback for waiting in batch.values()])
                except Exception as exc:  # every request of the batch fails, as its own write would have
                    for waiting in batch.values():
                        waiting.stored.set_exception(exc)
                else:
                    for key, waiting in batch.items():
                        waiting.stored.set_result(stored.get(key))
                finally:  # cancelled (shutdown): the requests waiting for this write end too
                    for waiting in batch.values():
                        if not waiting.stored.done():
                            waiting.stored.cancel()

    async def _write(self, callbacks: list[SignedCallback]) -> dict[str, str]:
        self._since_purge += len(callbacks)
        purge = self._since_purge >= PURGE_EVERY
        if purge:
            self._since_purge = 0
        async with self.database.connect() as connection:
            return await remember_nonces(connection, callbacks=callbacks,
                                         now=datetime.fromtimestamp(self.clock(), UTC), purge=purge)
