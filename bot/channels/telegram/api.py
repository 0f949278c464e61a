"""The Bot API as plain JSON on one aiohttp session: every call the Telegram channel makes at run time —
the start-up calls (setMyCommands, setWebhook / deleteWebhook), getMe, polling's getUpdates, replies
(``channel.deliver``), files (sendDocument) and the outbox (``sender.TelegramSender``).

Why not aiogram: importing it cost ``serve`` ~120 MiB and ~4.5 s of start-up (hundreds of pydantic models;
``bench/bench_start.py``: 246 → 124 MiB, 6.7 → 1.9 s to /healthz), and its methods (``bot.send_message``: a
method object, form-field serialisation, the answer validated into a ``Message``) ~1.6 ms of CPU per
message, several times a JSON POST. The channel reads updates itself (``convert``) and needs no more of
the Bot API than "POST JSON, read ``result``".

    api = BotApi(token, "https://api.telegram.org")     # InvalidToken unless "<digits>:<secret>", as aiogram checks
    api.id                                              # the bot's user id (the token's digits)
    await api.call("sendMessage", {"chat_id": 42, "text": "…"})     # the answer's "result"; raises BotApiError
    status, raw = await api.post("sendMessage", {...})               # the raw answer (the outbox maps it itself)
    status, raw = await api.post("sendMessage", b'{"chat_id":42,…}')  # a body already serialised as JSON
    await api.call_with_file("sendDocument", {"chat_id": 42}, "document", data, "a.pdf")
    await api.close()

URLs as aiogram's ``TelegramAPIServer.from_base`` builds them: ``{base}/bot{token}/{method}`` (the base's
trailing "/" dropped), so ``TELEGRAM_API_BASE`` means what it meant (a local Bot API server, the tests' fake).

Errors (``call``): ``BotRetryAfter`` (429, ``retry_after`` seconds), ``BotForbidden`` (403: blocked, or
never started), ``BotBadRequest`` (400), ``BotApiError`` (anything else, an undecodable answer too);
network failures raise aiohttp's own exceptions (``TRANSPORT_ERRORS`` catches them all).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

REQUEST_TIMEOUT = 30.0
JSON_HEADERS = {"Content-Type": "application/json"}
DEFAULT_API_BASE = "https://api.telegram.org"
# what a call raises when Telegram could not be reached or did not answer in time (no Bot API answer)
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError, OSError)


class InvalidToken(ValueError):
    """TELEGRAM_BOT_TOKEN is not "<bot id>:<secret>": no call could succeed, so the channel does not start."""


def bot_id_of(token: str) -> int:
    """The bot's user id, the token's part before ":" (aiogram's ``validate_token`` rules: no whitespace,
    digits, a colon, a non-empty secret)."""
    left, colon, right = token.partition(":")
    if any(c.isspace() for c in token) or not colon or not left.isdigit() or not right:
        raise InvalidToken("TELEGRAM_BOT_TOKEN is invalid: expected <bot id>:<secret> without spaces")
    return int(left)


class BotApiError(Exception):
    def __init__(self, method: str, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"Telegram {method}: {code} {description}")
        self.method = method
        self.code = code
        self.description = description
        self.retry_after = retry_after


class BotRetryAfter(BotApiError):
    """429: Telegram asks to wait ``retry_after`` seconds (every method of the bot is limited meanwhile)."""


class BotForbidden(BotApiError):
    """403: the user blocked the bot, or never started a chat with it."""


class BotBadRequest(BotApiError):
    """400: e.g. chat not found."""


def error_of(method: str, status: int, answer: dict[str, Any]) -> BotApiError:
    code = int(answer.get("error_code") or status)
    description = str(answer.get("description") or f"HTTP {status}")
    parameters = answer.get("parameters") or {}
    if parameters.get("retry_after") is not None or code == 429:
        return BotRetryAfter(method, code, description, retry_after=float(parameters.get("retry_after") or 1))
    if code == 403:
        return BotForbidden(method, code, description)
    if code == 400:
        return BotBadRequest(method, code, description)
    return BotApiError(method, code, description)


class BotApi:
    def __init__(self, token: str, api_base: str = DEFAULT_API_BASE) -> None:
        self.id = bot_id_of(token)
        self.token = token
        self._prefix = f"{api_base.rstrip('/')}/bot{token}/"
        self._http: aiohttp.ClientSession | None = None

    def url(self, method: str) -> str:
        return self._prefix + method

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
                json_serialize=json.dumps,
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none: no jar to consult per call
            )
        return self._http

    async def post(self, method: str, body: dict[str, Any] | aiohttp.FormData | bytes) -> tuple[int, bytes]:
        """One call: the HTTP status and the raw answer (aiohttp's exceptions on network failures).
        ``bytes`` are a JSON body serialised by the caller (the outbox builds a broadcast's once)."""
        if isinstance(body, bytes):
            request = self._session().post(self.url(method), data=body, headers=JSON_HEADERS)
        elif isinstance(body, aiohttp.FormData):
            request = self._session().post(self.url(method), data=body)
        else:
            request = self._session().post(self.url(method), json=body)
        async with request as response:
            return response.status, await response.read()

    async def call(self, method: str, body: dict[str, Any] | aiohttp.FormData) -> Any:
        """One call's ``result``; a Bot API error raises (see the module's doc)."""
        status, raw = await self.post(method, body)
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise BotApiError(method, status, f"undecodable answer {raw[:200]!r}")
        if answer.get("ok") is True:
            return answer.get("result")
        raise error_of(method, status, answer)

    async def call_with_file(self, method: str, fields: dict[str, Any], name: str, data: bytes,
                             filename: str) -> Any:
        """A method that uploads a file (multipart/form-data, the file in the parameter's own field)."""
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, str(value))
        form.add_field(name, data, filename=filename)
        return await self.call(method, form)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
