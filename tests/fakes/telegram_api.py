"""A local fake of the Telegram Bot API: a real aiohttp server on 127.0.0.1 speaking the Bot API protocol.

Point a bot at it with ``TELEGRAM_API_BASE=api.base_url`` (``api.BotApi(token, api.base_url)``; aiogram:
``AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))``). Only the HTTP API is fake; everything
that talks to it (our channel and sender, aiogram in the bench) is real.

Interface (all you need)::

    async with FakeTelegramAPI(token=TOKEN) as api:      # listens on 127.0.0.1:<free port>
        api.base_url                                     # "http://127.0.0.1:PORT" → settings.telegram_api_base
        api.calls                                        # every call, in order: ApiCall(method, params, at)
        api.calls_to("sendMessage")                      # the calls of one method
        api.sent_texts(chat_id=42)                       # texts of the sendMessage calls to that chat
        api.documents(chat_id=42)                        # files sent by sendDocument: UploadedFile(filename, content_type, data)
        await api.wait_for("sendMessage", count=3)       # until 3 calls recorded (TimeoutError after within=5 s)
        await api.wait_for_sent(42, count=2)             # until 2 messages were delivered to chat 42

        # scripting errors (checked in this order on each call)
        api.fail("sendMessage", status=429, retry_after=2, times=1)   # next call: 429 + parameters.retry_after;
        #   while that retry_after lasts EVERY method answers 429 (as Telegram does); calls made during the
        #   pause are counted in api.flood_violations
        api.fail("sendMessage", status=400, description="Bad Request: chat not found")
        api.fail("setWebhook", status=502, body="<html>Bad Gateway</html>")  # not the Bot API's JSON (a proxy's page)
        api.block(chat_id=42)                            # every sendMessage to 42 → 403 "bot was blocked by the user"

        # long polling: queued updates are served by getUpdates (offset honoured, long-poll wait)
        api.queue_update(message_update(1, user_id=42, text="/start"))

    Update builders (Bot API JSON shapes): ``message_update``, ``callback_update``, ``location_update``.

Methods answered: getMe, setMyCommands, deleteMyCommands, getMyCommands, setWebhook, deleteWebhook,
getWebhookInfo, getUpdates, sendMessage, editMessageText, editMessageReplyMarkup, answerCallbackQuery,
sendChatAction, sendDocument, close, logOut. A wrong token answers 401; an unknown method 404 (like Telegram).
Parameters arrive as JSON bodies (the channel, the sender) or as aiogram sends them (form fields, JSON-encoded
when structured); ``ApiCall.params``
holds them decoded (``reply_markup``, ``commands``… as dicts/lists, ``chat_id`` as int when numeric).
Files come as Telegram takes them: multipart/form-data, the file either in the parameter's own field or
in a field named by an ``attach://<name>`` value (as aiogram sends them); ``params["document"]`` is
then an ``UploadedFile``. A file_id or URL string is taken as it is.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

DEFAULT_TOKEN = "123456:TEST-token_for-the-fake-api"
BOT_ID = 123456
BOT_USERNAME = "volunteer_test_bot"


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when the fake received it
    status: int = 200  # what the fake answered


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class _ScriptedFailure:
    method: str
    status: int
    description: str
    retry_after: int | None
    times: int
    chat_id: int | str | None
    body: str | None = None


@dataclass
class _PendingUpdates:
    updates: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def _decode(value: str) -> Any:
    """aiogram sends scalars as strings and structures as JSON strings; undo both."""
    if value[:1] in ("{", "[") or value in ("true", "false", "null"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if value.lstrip("-").isdigit():
        return int(value)
    return value


class FakeTelegramAPI:
    def __init__(self, *, token: str = DEFAULT_TOKEN, bot_username: str = BOT_USERNAME,
                 host: str = "127.0.0.1") -> None:
        self.token = token
        self.bot_username = bot_username
        self.calls: list[ApiCall] = []
        self.flood_violations = 0
        self.commands: dict[str, list[dict[str, Any]]] = {}  # language_code ("" = default) → commands
        self.webhook: dict[str, Any] | None = None
        self._host = host
        self._failures: list[_ScriptedFailure] = []
        self._blocked: set[int | str] = set()
        self._flood_until = 0.0
        self._flood_retry_after = 0
        self._message_ids = itertools.count(1000)
        self._pending = _PendingUpdates()
        self._recorded = asyncio.Condition()
        self._sent_count: dict[Any, int] = {}  # chat_id → successful sendMessage calls
        self._server: TestServer | None = None
        self._closing = asyncio.Event()

    # ---- lifecycle ----
    async def start(self) -> FakeTelegramAPI:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._server = TestServer(app, host=self._host, port=0)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        self._closing.set()
        self._pending.changed.set()
        if self._server is not None:
            await self._server.close()

    async def __aenter__(self) -> FakeTelegramAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://{self._host}:{self._server.port}"

    # ---- scripting ----
    def fail(self, method: str, *, status: int, description: str | None = None, retry_after: int | None = None,
             times: int = 1, chat_id: int | str | None = None, body: str | None = None) -> None:
        """The next ``times`` calls of ``method`` (to ``chat_id`` if given) answer ``status``: the Bot API's
        error JSON, or ``body`` as it is (text/html) when given."""
        if description is None:
            description = {429: f"Too Many Requests: retry after {retry_after}",
                           403: "Forbidden: bot was blocked by the user",
                           400: "Bad Request: chat not found"}.get(status, "Error")
        self._failures.append(_ScriptedFailure(method, status, description, retry_after, times, chat_id, body))

    def block(self, chat_id: int | str) -> None:
        self._blocked.add(chat_id)

    def queue_update(self, update: dict[str, Any]) -> None:
        self._pending.updates.append(update)
        self._pending.changed.set()

    # ---- inspection ----
    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def sent(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """Params of successful sendMessage calls (to ``chat_id`` if given)."""
        return [c.params for c in self.calls_to("sendMessage")
                if c.status == 200 and (chat_id is None or c.params.get("chat_id") == chat_id)]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        return [p.get("text", "") for p in self.sent(chat_id)]

    def documents(self, chat_id: int | str | None = None) -> list[UploadedFile]:
        """Files of successful sendDocument calls (to ``chat_id`` if given)."""
        return [c.params["document"] for c in self.calls_to("sendDocument")
                if c.status == 200 and isinstance(c.params.get("document"), UploadedFile)
                and (chat_id is None or c.params.get("chat_id") == chat_id)]

    async def wait_for_sent(self, chat_id: int | str, *, count: int = 1, within: float = 5.0) -> None:
        """Until ``count`` messages in total were sent to ``chat_id``."""
        async def enough() -> None:
            async with self._recorded:
                await self._recorded.wait_for(lambda: self._sent_count.get(chat_id, 0) >= count)

        await asyncio.wait_for(enough(), within)

    async def wait_for(self, method: str, *, count: int = 1, within: float = 5.0) -> list[ApiCall]:
        async def enough() -> list[ApiCall]:
            async with self._recorded:
                await self._recorded.wait_for(lambda: len(self.calls_to(method)) >= count)
                return self.calls_to(method)

        return await asyncio.wait_for(enough(), within)

    # ---- protocol ----
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        if request.method == "POST":
            if request.content_type == "application/json":
                params = await request.json()
            else:
                form = await request.post()
                files = {k: UploadedFile(v.filename, v.content_type, v.file.read())
                         for k, v in form.items() if isinstance(v, web.FileField)}
                params = {k: _decode(v) for k, v in form.items() if isinstance(v, str)}
                for key, value in list(params.items()):  # "attach://<name>": the file in field <name>
                    if isinstance(value, str) and value.startswith("attach://"):
                        params[key] = files.pop(value.removeprefix("attach://"), value)
                params.update(files)
        params.update({k: _decode(v) for k, v in request.query.items()})
        call = ApiCall(method=method, params=params, at=time.monotonic())
        response = await self._answer(method, request.match_info["token"], params)
        call.status = response.status
        if method.lower() != "getupdates":  # polling is noise for assertions
            await self._record(call)
        return response

    async def _answer(self, method: str, token: str, params: dict[str, Any]) -> web.Response:
        if token != self.token:
            return self._error(401, "Unauthorized")
        failure = self._scripted_failure(method, params)
        if failure is not None:
            return failure
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        result = await handler(params)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _record(self, call: ApiCall) -> None:
        async with self._recorded:
            self.calls.append(call)
            if call.method.lower() == "sendmessage" and call.status == 200:
                chat_id = call.params.get("chat_id")
                self._sent_count[chat_id] = self._sent_count.get(chat_id, 0) + 1
            self._recorded.notify_all()

    @staticmethod
    def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    def _scripted_failure(self, method: str, params: dict[str, Any]) -> web.Response | None:
        now = time.monotonic()
        if now < self._flood_until:  # Telegram blocks every call of the bot while a 429 lasts
            self.flood_violations += 1
            remaining = max(1, int(self._flood_until - now + 0.999))
            return self._error(429, f"Too Many Requests: retry after {remaining}", {"retry_after": remaining})
        for failure in self._failures:
            if failure.method.lower() != method.lower() or failure.times <= 0:
                continue
            if failure.chat_id is not None and params.get("chat_id") != failure.chat_id:
                continue
            failure.times -= 1
            if failure.body is not None:
                return web.Response(status=failure.status, text=failure.body, content_type="text/html")
            if failure.status == 429:
                retry_after = failure.retry_after or 1
                self._flood_until = now + retry_after
                return self._error(429, failure.description, {"retry_after": retry_after})
            return self._error(failure.status, failure.description)
        if method.lower() == "sendmessage" and params.get("chat_id") in self._blocked:
            return self._error(403, "Forbidden: bot was blocked by the user")
        return None

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id", 0)
        chat_type = "private" if isinstance(chat_id, int) and chat_id > 0 else "supergroup"
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "志愿助手", "username": self.bot_username},
            "text": params.get("text", ""),
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "志愿助手", "username": self.bot_username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        self.commands[params.get("language_code", "")] = params.get("commands", [])
        return True

    async def _m_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands.get(params.get("language_code", ""), [])

    async def _m_deletemycommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(params.get("language_code", ""), None)
        return True

    async def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = params
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._pending.updates)}

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        # confirming: updates below the offset are gone for good (Bot API semantics)
        self._pending.updates = [u for u in self._pending.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while not self._pending.updates and not self._closing.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._pending.changed.clear()
            try:
                await asyncio.wait_for(self._pending.changed.wait(), remaining)
            except TimeoutError:
                break
        limit = int(params.get("limit") or 100)
        return self._pending.updates[:limit]

    async def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any] | web.Response:
        text = str(params.get("text", ""))
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        return self._message(params)

    async def _m_senddocument(self, params: dict[str, Any]) -> dict[str, Any] | web.Response:
        document = params.get("document")
        if isinstance(document, str) and document.startswith("attach://"):
            return self._error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if not document:
            return self._error(400, "Bad Request: there is no document in the request")
        if len(str(params.get("caption", ""))) > 1024:
            return self._error(400, "Bad Request: message caption is too long")
        message = self._message(params)
        del message["text"]
        if params.get("caption"):
            message["caption"] = params["caption"]
        if isinstance(document, UploadedFile):
            message["document"] = {"file_id": f"doc{message['message_id']}", "file_unique_id": f"u{message['message_id']}",
                                   "file_name": document.filename, "mime_type": document.content_type,
                                   "file_size": len(document.data)}
        else:
            message["document"] = {"file_id": str(document), "file_unique_id": str(document)[:16]}
        return message

    async def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params)

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_sendchataction(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_logout(self, params: dict[str, Any]) -> bool:
        return True


# ---- update builders (the JSON Telegram posts to a webhook / returns from getUpdates) ----

def _user(user_id: int, language_code: str | None, first_name: str) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        user["language_code"] = language_code
    return user


def _chat(user_id: int, chat_id: int | None, chat_type: str | None) -> dict[str, Any]:
    if chat_id is None or chat_id == user_id:
        return {"id": user_id, "type": "private", "first_name": "user"}
    return {"id": chat_id, "type": chat_type or "supergroup", "title": "志愿者群"}


def message_update(update_id: int, *, user_id: int, text: str, chat_id: int | None = None,
                   chat_type: str | None = None, language_code: str | None = "zh-hans",
                   first_name: str = "小王", entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A text message. Text starting with "/" gets a bot_command entity like Telegram adds."""
    message: dict[str, Any] = {
        "message_id": update_id, "date": int(time.time()),
        "chat": _chat(user_id, chat_id, chat_type), "from": _user(user_id, language_code, first_name),
        "text": text,
    }
    if entities is None and text.startswith("/"):
        entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if entities:
        message["entities"] = entities
    return {"update_id": update_id, "message": message}


def callback_update(update_id: int, *, user_id: int, data: str, chat_id: int | None = None,
                    chat_type: str | None = None, language_code: str | None = "zh-hans",
                    message_id: int = 1) -> dict[str, Any]:
    """An inline-keyboard button press carrying ``data``."""
    return {"update_id": update_id, "callback_query": {
        "id": f"cb{update_id}", "from": _user(user_id, language_code, "小王"), "chat_instance": "ci",
        "data": data,
        "message": {"message_id": message_id, "date": int(time.time()), "chat": _chat(user_id, chat_id, chat_type),
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "志愿助手"}, "text": "…"},
    }}


def location_update(update_id: int, *, user_id: int, latitude: float, longitude: float,
                    language_code: str | None = "zh-hans") -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "chat": _chat(user_id, None, None),
        "from": _user(user_id, language_code, "小王"),
        "location": {"latitude": latitude, "longitude": longitude},
    }}
