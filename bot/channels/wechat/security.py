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

import contextlib
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from xml.parsers.expat import ExpatError

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from bot.channels.wechat.settings import WeChatSettings
from bot.group_commit import GroupCommit
from services.wechat_replay import SignedCallback, body_digest, nonce_key, remember_nonces

REPLAY_WINDOW_SECONDS = 300
MAX_QUERY_FIELD = 128  # timestamps, nonces and signatures are short; longer ones are not WeChat's
PURGE_EVERY = 64  # remembered nonces past the window are deleted once per 64 requests of a process
# a pair stored by this process is answered from memory this long (WeChat retries within about 15 s);
# later deliveries of it ask the database, and the memory stays small under load
STORED_MEMORY_SECONDS = 30.0
_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature_matches(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """wechatpy's ``check_signature`` (SHA-1 of the sorted UTF-8 parts), compared in constant time."""
    try:
        parts = sorted((token.encode(), timestamp.encode(), nonce.encode()))
        return hmac.compare_digest(hashlib.sha1(b"".join(parts)).hexdigest().encode(), signature.encode())
    except UnicodeError:  # a lone surrogate: no signature of WeChat's
        return False


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
        if not signature_matches(self.token, signature, timestamp, nonce):
            raise Rejected(403, "bad signature")
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


class ReplayGuard:
    """Signed (timestamp, nonce) pairs seen within the replay window, shared by every process.

    Write-through, so exact across processes and restarts: a pair is in the database before its
    message reaches the core, whichever process (or the next one after a restart) sees it again. A
    write that only batched pairs in memory and wrote them later would be cheaper but not exact: a
    second worker (or the process after a crash) would not see a pair still in the first one's memory
    and would accept a second body under its signature until the write.

    What makes it cheap instead:

    - group commit (``bot.group_commit``): the callbacks that arrive while one write is queued or
      running are written together by the next one (one transaction: an INSERT … RETURNING, and a
      SELECT only when a pair was seen before), and each request waits for the write that holds its
      pair. On SQLite the write queues with the turns for the single writer (``write_slot``), and what
      arrives meanwhile joins it;
    - one connection for a run of writes: the writer keeps its connection while callbacks keep coming
      and gives it back to the pool when none are waiting; on PostgreSQL in autocommit, so a write is
      one round trip instead of three; on SQLite the whole write is one trip to the driver's thread
      (``services.wechat_replay``);
    - memory of what this process stored: a pair written here (and its body's digest) is answered
      again without the database for ``STORED_MEMORY_SECONDS``, a WeChat retry or a replay alike. Exact,
      because a stored pair's row never changes (``ON CONFLICT DO NOTHING``) and is not purged before
      its window ends, and a request whose timestamp is past the window is refused before the guard.
    """

    def __init__(self, database: AsyncEngine, *, clock: Callable[[], float] = time.time,
                 write_slot: Callable[[], contextlib.AbstractAsyncContextManager[None]] = contextlib.nullcontext) -> None:
        self.database = database  # a connection, not a session: the pairs are never ORM objects
        self.clock = clock
        self.write_slot = write_slot
        # the same pair twice before its write (WeChat's retry, or a replay) joins by nonce key: both get what
        # the first one's write stored. The slot is read at each write (a test may replace it)
        kept = _KeptConnection(self)
        self._commits: GroupCommit[SignedCallback, str | None] = GroupCommit(
            self._write_batch, slot=lambda: self.write_slot(), run=lambda: kept, name="wechat-replay-guard")
        self._connection: AsyncConnection | None = None  # the writer's, while batches keep coming
        self._since_purge = 0
        # nonce key → (body digest stored for it, when to forget it); swept every STORED_MEMORY_SECONDS
        self._stored: dict[str, tuple[str, float]] = {}
        self._sweep_at = 0.0

    def signed(self, query: Mapping[str, str], body: bytes) -> SignedCallback:
        """The callback ``check`` remembers (computed as there, where a memory hit skips it): for a caller that
        writes it with its own write (``write_on``)."""
        timestamp = query["timestamp"]
        expires = int(timestamp) + REPLAY_WINDOW_SECONDS + 1
        return SignedCallback(nonce_key(timestamp, query["nonce"]), body_digest(body),
                              datetime.fromtimestamp(expires, UTC))

    async def write_on(self, connection: AsyncConnection, callbacks: list[SignedCallback]) -> dict[str, str]:
        """Remembers ``callbacks`` on the caller's connection and write slot (on SQLite one wait for the writer
        with the caller's own write, e.g. the inbound queue's); commits. Per nonce key the body digest stored
        for it: another one than the callback's is a replay, as in ``check``."""
        stored = await self._write(connection, callbacks)
        self._remember(callbacks, stored)
        return stored

    async def check(self, query: Mapping[str, str], body: bytes) -> None:
        """Call after the signature was checked. Raises ``Rejected(403)`` for a seen signature with another body."""
        timestamp = query["timestamp"]
        key = nonce_key(timestamp, query["nonce"])
        digest = body_digest(body)
        known = self._stored.get(key)
        if known is not None and known[1] > self.clock():
            stored: str | None = known[0]
        else:
            expires = int(timestamp) + REPLAY_WINDOW_SECONDS + 1
            stored = await self._commits.submit(SignedCallback(key, digest, datetime.fromtimestamp(expires, UTC)),
                                                key=key)
        if stored != digest:
            raise Rejected(403, "signature already used for another body (replay)")

    async def _write_batch(self, callbacks: list[SignedCallback]) -> list[str | None]:
        """One write for the batch (``GroupCommit``), on the writer's connection: per callback the digest stored."""
        try:
            if self._connection is None:
                self._connection = await self._connect()
            stored = await self._write(self._connection, callbacks)
        except Exception:
            connection, self._connection = self._connection, None
            if connection is not None:
                await _close_quietly(connection)  # a failed connection is not used again
            raise
        self._remember(callbacks, stored)
        return [stored.get(callback.nonce_key) for callback in callbacks]

    async def _connect(self) -> AsyncConnection:
        connection = await self.database.connect()
        if connection.dialect.name == "postgresql":
            # each statement its own transaction: no BEGIN and COMMIT round trips around the INSERT (the
            # INSERT … ON CONFLICT is atomic alone, and a conflict waits for the other row's commit, so
            # the SELECT after it sees that row). Reset when the connection goes back to the pool. Not
            # on SQLite, where switching costs a PRAGMA each way, more than the COMMIT it saves.
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def _remember(self, callbacks: list[SignedCallback], stored: Mapping[str, str]) -> None:
        now = self.clock()
        if now >= self._sweep_at:
            self._stored = {key: known for key, known in self._stored.items() if known[1] > now}
            self._sweep_at = now + STORED_MEMORY_SECONDS
        until = now + STORED_MEMORY_SECONDS
        for callback in callbacks:
            digest = stored.get(callback.nonce_key)
            if digest is not None:
                self._stored[callback.nonce_key] = (digest, until)

    async def _write(self, connection: AsyncConnection, callbacks: list[SignedCallback]) -> dict[str, str]:
        self._since_purge += len(callbacks)
        purge = self._since_purge >= PURGE_EVERY
        if purge:
            self._since_purge = 0
        return await remember_nonces(connection, callbacks=callbacks,
                                     now=datetime.fromtimestamp(self.clock(), UTC), purge=purge)


class _KeptConnection:
    """Around a writer's batches (``GroupCommit``'s ``run``): the guard's connection goes back to the pool once
    no callback waits any more. A class, not ``asynccontextmanager``: a third of the calls per writer run."""

    __slots__ = ("guard",)

    def __init__(self, guard: ReplayGuard) -> None:
        self.guard = guard

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        connection, self.guard._connection = self.guard._connection, None
        if connection is not None:
            await _close_quietly(connection)


async def _close_quietly(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection may fail too; the pool replaces it
        await connection.close()
