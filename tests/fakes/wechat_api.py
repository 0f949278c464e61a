"""A local fake of the WeChat official-account HTTP API: a real aiohttp server on 127.0.0.1.

Point the client at it with ``WECHAT_API_BASE=api.base_url`` (and ``WECHAT_MP_BASE=api.base_url`` for
showqrcode). Only the remote platform is fake; the client, sender and CLI talking to it are real.

    async with FakeWeChatAPI(app_id=APP_ID, secret=SECRET) as api:
        api.base_url                       # "http://127.0.0.1:PORT"
        api.calls                          # every call in order: ApiCall(path, query, body, errcode)
        api.calls_to("message/custom/send")
        api.sent_texts("openid")           # contents of customer-service texts to that user
        api.token_requests                 # how many tokens were issued
        api.fail("message/custom/send", 45015, times=1)   # next call answers errcode 45015
        api.fail("message/custom/send", 40001, times=None)  # every call (a token that never sticks)
        api.invalidate_tokens()            # as if another process fetched a new token
        api.unsubscribe("openid")          # sends to that user answer 43004
        await api.wait_for("message/custom/send", count=1)

Protocol details reproduced: a new token invalidates the previous one (40001 for the old one),
a missing token is 41001, a wrong secret 40001 / wrong app id 40013 on the token endpoint,
menu validation (≤ 3 buttons, ≤ 5 sub-buttons, name lengths in bytes, click keys), temporary
QR codes (QR_STR_SCENE, scene_str ≤ 64 bytes, expire_seconds ≤ 2592000) and showqrcode.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

APP_ID = "wx0123456789abcdef"
SECRET = "test-app-secret-0123456789abcdef"
ERRMSG = {
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40023: "invalid sub button size",
    40037: "invalid template_id",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    -1: "system error",
}


@dataclass
class ApiCall:
    path: str  # without the /cgi-bin/ prefix, e.g. "message/custom/send"
    query: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes
    errcode: int


@dataclass
class _Failure:
    path: str
    errcode: int
    times: int | None  # None: every call


class FakeWeChatAPI:
    def __init__(self, *, app_id: str = APP_ID, secret: str = SECRET, expires_in: int = 7200) -> None:
        self.app_id = app_id
        self.secret = secret
        self.expires_in = expires_in
        self.calls: list[ApiCall] = []
        self.token_requests = 0
        self.valid_token: str | None = None
        self.menu: dict[str, Any] | None = None
        self.qrcodes: dict[str, dict[str, Any]] = {}  # ticket → request
        self.unsubscribed: set[str] = set()
        self._failures: list[_Failure] = []
        self._numbers = itertools.count(1)
        self._changed = asyncio.Event()
        self._server: TestServer | None = None

    # ---- scripting ----------------------------------------------------------------------------
    def fail(self, path: str, errcode: int, *, times: int | None = 1) -> None:
        self._failures.append(_Failure(path, errcode, times))

    def invalidate_tokens(self) -> None:
        self.valid_token = None

    def unsubscribe(self, openid: str) -> None:
        self.unsubscribed.add(openid)

    def calls_to(self, path: str) -> list[ApiCall]:
        return [c for c in self.calls if c.path == path]

    def sent_texts(self, openid: str) -> list[str]:
        return [c.body["text"]["content"] for c in self.calls_to("message/custom/send")
                if c.errcode == 0 and c.body and c.body.get("touser") == openid]

    async def wait_for(self, path: str, *, count: int = 1, within: float = 5.0) -> list[ApiCall]:
        async def reached() -> None:
            while len(self.calls_to(path)) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), within)
        return self.calls_to(path)

    # ---- server -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "use `async with FakeWeChatAPI()`"
        return str(self._server.make_url("")).rstrip("/")

    async def __aenter__(self) -> FakeWeChatAPI:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_get("/cgi-bin/showqrcode", self._showqrcode)
        app.router.add_post("/cgi-bin/{path:.+}", self._api)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        await self._server.close()

    def _record(self, call: ApiCall) -> None:
        self.calls.append(call)
        self._changed.set()

    @staticmethod
    def _answer(errcode: int, **extra: Any) -> web.Response:
        body = {"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error"), **extra}
        return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="application/json")

    async def _token(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        errcode = 0
        if query.get("grant_type") != "client_credential":
            errcode = 40002
        elif query.get("appid") != self.app_id:
            errcode = 40013
        elif query.get("secret") != self.secret:
            errcode = 40001
        self._record(ApiCall("token", query, None, b"", errcode))
        if errcode:
            return self._answer(errcode)
        self.token_requests += 1
        # a new token invalidates the previous one
        self.valid_token = f"ACCESS_TOKEN_{self.token_requests}_{next(self._numbers)}"
        return web.json_response({"access_token": self.valid_token, "expires_in": self.expires_in})

    def _scripted(self, path: str) -> int:
        for failure in self._failures:
            if failure.path == path and (failure.times is None or failure.times > 0):
                if failure.times is not None:
                    failure.times -= 1
                return failure.errcode
        return 0

    async def _api(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        query = dict(request.query)
        raw = await request.read()
        body: dict[str, Any] | None = None
        errcode = 0
        try:
            parsed = json.loads(raw.decode("utf-8")) if raw else None
            body = parsed if isinstance(parsed, dict) else None
        except (ValueError, UnicodeError):
            errcode = 47001
        token = query.get("access_token")
        if not token:
            errcode = 41001
        elif token != self.valid_token:
            errcode = 40001
        elif body is None and not errcode:
            errcode = 44002 if not raw else 47001
        if not errcode:
            errcode = self._scripted(path)
        extra: dict[str, Any] = {}
        if not errcode:
            handler = {"message/custom/send": self._custom_send, "message/template/send": self._template_send,
                       "menu/create": self._menu_create, "qrcode/create": self._qrcode_create}.get(path)
            if handler is None:
                self._record(ApiCall(path, query, body, raw, 404))
                return web.Response(status=404, text="not found")
            assert body is not None
            errcode, extra = handler(body)
        self._record(ApiCall(path, query, body, raw, errcode))
        return self._answer(errcode, **extra)

    def _custom_send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        touser = body.get("touser")
        if not touser:
            return 40003, {}
        if touser in self.unsubscribed:
            return 43004, {}
        if body.get("msgtype") != "text" or not isinstance(body.get("text"), dict) or not body["text"].get("content"):
            return 47001, {}
        return 0, {}

    def _template_send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not body.get("template_id"):
            return 40037, {}
        if not body.get("touser"):
            return 40003, {}
        if body["touser"] in self.unsubscribed:
            return 43004, {}
        if not isinstance(body.get("data"), dict):
            return 47001, {}
        return 0, {"msgid": 200000000 + next(self._numbers)}

    def _menu_create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return 40016, {}
        for button in buttons:
            subs = button.get("sub_button")
            if len(str(button.get("name", "")).encode("utf-8")) not in range(1, 17):
                return 40018, {}
            if subs:
                if len(subs) > 5:
                    return 40023, {}
                items = subs
                if any(len(str(s.get("name", "")).encode("utf-8")) not in range(1, 61) for s in subs):
                    return 40018, {}
            else:
                items = [button]
            for item in items:
                kind = item.get("type")
                if kind not in ("click", "view", "miniprogram", "scancode_push", "location_select"):
                    return 40017, {}
                if kind == "click" and len(str(item.get("key", "")).encode("utf-8")) not in range(1, 129):
                    return 40019, {}
        self.menu = body
        return 0, {}

    def _qrcode_create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        scene = (body.get("action_info") or {}).get("scene") or {}
        expire = int(body.get("expire_seconds", 60))
        if body.get("action_name") != "QR_STR_SCENE" or not 0 < len(str(scene.get("scene_str", "")).encode()) <= 64:
            return 47001, {}
        if not 60 <= expire <= 2592000:
            return 47001, {}
        ticket = f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{next(self._numbers)}=="
        self.qrcodes[ticket] = body
        return 0, {"ticket": ticket, "expire_seconds": expire,
                   "url": f"http://weixin.qq.com/q/fake-{scene['scene_str']}"}

    async def _showqrcode(self, request: web.Request) -> web.Response:
        ticket = request.query.get("ticket", "")
        self._record(ApiCall("showqrcode", dict(request.query), None, b"", 0 if ticket in self.qrcodes else 404))
        if ticket not in self.qrcodes:
            return web.Response(status=404, text="ticket not found")
        # a JPEG marker and the scene: enough for a test to tell which code it fetched
        scene = self.qrcodes[ticket]["action_info"]["scene"]["scene_str"]
        return web.Response(body=b"\xff\xd8\xff\xe0" + scene.encode(), content_type="image/jpeg")
