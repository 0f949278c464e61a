"""The web console on loopback: the app of ``serve`` (no channel), and browsers as aiohttp clients with
their own cookie jars; sign-in goes through a real one-time link."""

from __future__ import annotations

import re
from types import TracebackType

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.config import Settings
from bot.runtime import Runtime
from handlers.engine import Engine
from models.db import SessionFactory
from services.people import get_or_create_identity
from services.web_auth import create_login_link
from tests.conftest import TEST_KEY

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """One person's browser: a cookie jar, GET and POST, and the CSRF token of the last page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str, **kwargs: object) -> tuple[int, str]:
        async with self.http.get(self.base + path, allow_redirects=False, **kwargs) as response:  # type: ignore[arg-type]
            body = (await response.read()).decode("utf-8", "replace")  # a download may be binary
            found = CSRF.search(body)
            if found:
                self.csrf = found.group(1)
            return response.status, body if response.status < 300 else response.headers.get("Location", body)

    async def post(self, path: str, data: dict[str, object] | list[tuple[str, str]], *,
                   csrf: bool = True) -> tuple[int, str]:
        form = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            form.append(("csrf", self.csrf))
        async with self.http.post(self.base + path, data=form, allow_redirects=False) as response:
            body = await response.text()
            return response.status, response.headers.get("Location", body) if 300 <= response.status < 400 else body

    async def close(self) -> None:
        await self.http.close()


class WebHarness:
    def __init__(self, core: Engine, sessions: SessionFactory, *, base_url: str = "", admins: str = "") -> None:
        self.settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///unused.db",  # type: ignore[call-arg]
                                 id_encryption_key=TEST_KEY, public_base_url=base_url, admins=admins)
        self.runtime = Runtime(settings=self.settings, db=sessions.kw["bind"], sessions=sessions, core=core)
        self.sessions = sessions
        self.browsers: list[Browser] = []

    async def __aenter__(self) -> WebHarness:
        self.app = await create_app(self.runtime, channels=[])
        self.server = TestServer(self.app, host="127.0.0.1")
        await self.server.start_server()
        self.base = str(self.server.make_url("")).rstrip("/")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for browser in self.browsers:
            await browser.close()
        await self.server.close()

    def browser(self) -> Browser:
        browser = Browser(self.base)
        self.browsers.append(browser)
        return browser

    async def login_link(self, channel: str, user: str) -> str:
        """A fresh one-time link's path for that account (made like ``web login-link`` makes it)."""
        now = self.runtime.core.clock()
        async with self.sessions() as session:
            identity, person = await get_or_create_identity(session, channel=channel, external_id=user, now=now)
            token = await create_login_link(session, person_id=person.id, identity_id=identity.id, now=now)
            await session.commit()
        return f"/admin/login/{token}"

    async def signed_in(self, channel: str, user: str) -> Browser:
        browser = self.browser()
        status, where = await browser.get(await self.login_link(channel, user))
        assert (status, where) == (303, "/admin/"), (status, where)
        await browser.get("/admin/")
        return browser
