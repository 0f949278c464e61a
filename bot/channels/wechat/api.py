"""An asyncio client for the few WeChat official-account HTTP endpoints we use (wechatpy has none).

One ``aiohttp.ClientSession`` per client, one access token per app id shared by every process:
the token lives in the database (``wechat_access_token``) or in Redis when ``REDIS_URL`` is set,
and only one process refreshes it at a time (a new token invalidates the old one, so two
processes refreshing in turn would keep invalidating each other). A 40001/42001 answer triggers
at most ``MAX_TOKEN_REFRESHES`` refreshes per call — a loop, never recursion.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from bot.config import Settings
from models import utcnow
from models.db import SessionFactory
from services.wechat_state import (
    ensure_access_token_row,
    get_access_token,
    lock_access_token,
    save_access_token,
)

log = logging.getLogger(__name__)

# access token no longer valid: 40001 invalid credential, 40014 invalid token, 42001 expired
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
MAX_TOKEN_REFRESHES = 2
# refresh this long before WeChat's expiry so a token never dies in flight
EXPIRY_MARGIN = timedelta(minutes=5)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)
MAX_TEMP_QR_SECONDS = 30 * 24 * 3600  # WeChat's limit for temporary QR codes


class WeChatApiError(Exception):
    """WeChat answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: datetime
    version: int

    def fresh(self, now: datetime) -> bool:
        return bool(self.token) and now < self.expires_at - EXPIRY_MARGIN


TokenFetcher = Callable[[], Awaitable[tuple[str, int]]]


class TokenStore(Protocol):
    async def get(self) -> AccessToken | None: ...

    async def refresh(self, fetch: TokenFetcher, *, stale_version: int | None) -> AccessToken:
        """Replace the token unless another process already replaced ``stale_version``."""
        ...

    async def close(self) -> None: ...


class DatabaseTokenStore:
    """The token row in ``wechat_access_token``; a refresh holds the row's write lock.

    ``UPDATE … SET version = version`` takes the row lock on PostgreSQL and the write lock on
    SQLite, so the same statement serializes refreshers on both backends. The HTTP call to the
    token endpoint happens while the lock is held (bounded by REQUEST_TIMEOUT): the others wait
    and then find the new token instead of fetching their own.
    """

    def __init__(self, sessions: SessionFactory, app_id: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions = sessions
        self.app_id = app_id
        self.clock = clock

    async def get(self) -> AccessToken | None:
        async with self.sessions() as session:
            row = await get_access_token(session, app_id=self.app_id)
            if row is None or not row.token or row.expires_at is None:
                return None
            return AccessToken(row.token, row.expires_at, row.version)

    async def refresh(self, fetch: TokenFetcher, *, stale_version: int | None) -> AccessToken:
        async with self.sessions() as session:
            await ensure_access_token_row(session, app_id=self.app_id, now=self.clock())
        async with self.sessions() as session:
            row = await lock_access_token(session, app_id=self.app_id)
            now = self.clock()
            current = AccessToken(row.token, row.expires_at, row.version) if row.expires_at else None
            if current is not None and current.fresh(now) and current.version != stale_version:
                await session.rollback()
                return current  # someone refreshed while we waited for the lock
            token, expires_in = await fetch()
            await save_access_token(session, row=row, token=token, expires_at=now + timedelta(seconds=expires_in),
                                    now=now)
            assert row.expires_at is not None
            return AccessToken(row.token, row.expires_at, row.version)

    async def close(self) -> None:
        return None


class RedisTokenStore:
    """The token under one Redis key; ``SET NX`` on a lock key makes one process the refresher."""

    LOCK_SECONDS = 15

    def __init__(self, redis_url: str, app_id: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        import redis.asyncio as redis

        self.redis = redis.from_url(redis_url)
        self.key = f"volunteer-bot:wechat:access_token:{app_id}"
        self.lock_key = self.key + ":lock"
        self.clock = clock

    async def get(self) -> AccessToken | None:
        raw = await self.redis.get(self.key)
        if raw is None:
            return None
        data = json.loads(raw)
        return AccessToken(data["token"], datetime.fromisoformat(data["expires_at"]), int(data["version"]))

    async def refresh(self, fetch: TokenFetcher, *, stale_version: int | None) -> AccessToken:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.LOCK_SECONDS + 5
        while True:
            current = await self.get()
            if current is not None and current.fresh(self.clock()) and current.version != stale_version:
                return current
            if await self.redis.set(self.lock_key, "1", nx=True, ex=self.LOCK_SECONDS):
                break
            if loop.time() > deadline:
                raise WeChatApiError(-1, "timed out waiting for another process to refresh the access token")
            await asyncio.sleep(0.05)
        try:
            current = await self.get()
            if current is not None and current.fresh(self.clock()) and current.version != stale_version:
                return current
            token, expires_in = await fetch()
            fresh = AccessToken(token, self.clock() + timedelta(seconds=expires_in),
                                (current.version if current else 0) + 1)
            await self.redis.set(self.key, json.dumps({"token": fresh.token, "version": fresh.version,
                                                       "expires_at": fresh.expires_at.isoformat()}),
                                 ex=max(60, expires_in))
            return fresh
        finally:
            await self.redis.delete(self.lock_key)

    async def close(self) -> None:
        await self.redis.aclose()


def token_store_for(*, sessions: SessionFactory, app_id: str, redis_url: str = "") -> TokenStore:
    return RedisTokenStore(redis_url, app_id) if redis_url else DatabaseTokenStore(sessions, app_id)


@dataclass(frozen=True, slots=True)
class QrCode:
    ticket: str
    url: str  # the content encoded in the QR code
    expire_seconds: int
    image_url: str  # showqrcode: the picture to print


class WeChatApiClient:
    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        tokens: TokenStore,
        api_base: str = "https://api.weixin.qq.com",
        mp_base: str = "https://mp.weixin.qq.com",
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.tokens = tokens
        self.api_base = api_base.rstrip("/")
        self.mp_base = mp_base.rstrip("/")
        self._session = session
        self._owns_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        await self.tokens.close()

    # ---- access token -----------------------------------------------------------------------
    async def _fetch_token(self) -> tuple[str, int]:
        params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret}
        async with self.session.get(f"{self.api_base}/cgi-bin/token", params=params) as response:
            data = await self._json(response)
        if data.get("errcode"):
            raise WeChatApiError(int(data["errcode"]), str(data.get("errmsg", "")))
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    async def access_token(self) -> AccessToken:
        current = await self.tokens.get()
        if current is not None and current.fresh(utcnow()):
            return current
        return await self.tokens.refresh(self._fetch_token, stale_version=current.version if current else None)

    # ---- calls ------------------------------------------------------------------------------
    @staticmethod
    async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
        if response.status >= 500:
            raise WeChatApiError(-1, f"HTTP {response.status}")
        try:
            data = json.loads(await response.text())
        except ValueError as exc:
            raise WeChatApiError(-1, f"not JSON (HTTP {response.status})") from exc
        if not isinstance(data, dict):
            raise WeChatApiError(-1, "unexpected JSON")
        return data

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the shared token; refreshes it a bounded number of times on 40001/42001."""
        # WeChat shows \\uXXXX escapes literally in some places (menus): send UTF-8 as is
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        token = await self.access_token()
        refreshes = 0
        while True:
            async with self.session.post(f"{self.api_base}{path}", params={"access_token": token.token},
                                         data=body, headers={"Content-Type": "application/json"}) as response:
                data = await self._json(response)
            errcode = int(data.get("errcode") or 0)
            if errcode == 0:
                return data
            if errcode in TOKEN_ERRORS and refreshes < MAX_TOKEN_REFRESHES:
                refreshes += 1
                log.info("WeChat says the access token is invalid (%s); refresh %d/%d",
                         errcode, refreshes, MAX_TOKEN_REFRESHES)
                token = await self.tokens.refresh(self._fetch_token, stale_version=token.version)
                continue
            raise WeChatApiError(errcode, str(data.get("errmsg", "")))

    async def send_text(self, openid: str, content: str) -> None:
        """Customer-service text message (within 48 h of the user's last message)."""
        await self.post("/cgi-bin/message/custom/send",
                        {"touser": openid, "msgtype": "text", "text": {"content": content}})

    async def send_template(self, openid: str, template_id: str, data: dict[str, dict[str, str]],
                            url: str | None = None) -> int:
        payload: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            payload["url"] = url
        result = await self.post("/cgi-bin/message/template/send", payload)
        return int(result.get("msgid", 0))

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self.post("/cgi-bin/menu/create", menu)

    async def create_temporary_qrcode(self, scene: str, expire_seconds: int) -> QrCode:
        """A temporary parametric QR code with a string scene (≤ 64 bytes): scanning sends SCAN/subscribe."""
        if not 0 < len(scene.encode("utf-8")) <= 64:
            raise ValueError("a QR scene string holds 1 to 64 bytes")
        expire_seconds = max(60, min(int(expire_seconds), MAX_TEMP_QR_SECONDS))
        data = await self.post("/cgi-bin/qrcode/create", {
            "expire_seconds": expire_seconds, "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        })
        ticket = str(data["ticket"])
        return QrCode(ticket=ticket, url=str(data.get("url", "")),
                      expire_seconds=int(data.get("expire_seconds", expire_seconds)),
                      image_url=f"{self.mp_base}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}")



def api_client(settings: Settings, sessions: SessionFactory) -> WeChatApiClient | None:
    """The one place a ``WeChatApiClient`` is built from settings (serve, the outbox sender, the CLI);
    None without ``WECHAT_APP_ID``/``WECHAT_APP_SECRET``. The caller closes it."""
    if not settings.wechat_api_configured:
        return None
    tokens = token_store_for(sessions=sessions, app_id=settings.wechat_app_id, redis_url=settings.redis_url)
    return WeChatApiClient(app_id=settings.wechat_app_id, app_secret=settings.wechat_app_secret, tokens=tokens,
                           api_base=settings.wechat_api_base, mp_base=settings.wechat_mp_base)
