"""Runs the real web app with the Telegram channel against the fake Bot API (shared by the Telegram tests).

``TelegramHarness`` starts ``create_app(runtime, channels=[telegram.setup])`` on 127.0.0.1 (webhook or
polling), delivers updates the way Telegram would (POST /telegram with the secret header, or queued for
getUpdates) and waits until the dispatcher finished them.
"""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.channels.telegram import channel as telegram
from bot.config import Settings
from bot.runtime import Runtime
from handlers.engine import Engine
from models.db import SessionFactory, create_engine
from tests.fakes.telegram_api import (
    BOT_USERNAME,
    DEFAULT_TOKEN,
    FakeTelegramAPI,
    callback_update,
    message_update,
)

SECRET = "s3cret-Token_for-tests"
WEBHOOK_URL = "https://bot.example.org/telegram"


class TelegramHarness:
    def __init__(self, api: FakeTelegramAPI, core: Engine, sessions: SessionFactory, db_url: str, *,
                 webhook: bool = True, **settings: Any) -> None:
        """``settings``: more ``Settings`` fields (e.g. ``core_concurrency``)."""
        self.api = api
        self.webhook = webhook
        self.settings = Settings(
            _env_file=None, database_url=db_url, telegram_bot_token=DEFAULT_TOKEN, telegram_api_base=api.base_url,
            telegram_webhook_url=WEBHOOK_URL if webhook else "", telegram_webhook_secret=SECRET,
            telegram_bot_username=BOT_USERNAME, **settings,
        )
        self.runtime = Runtime(settings=self.settings, db=create_engine(db_url), sessions=sessions, core=core)
        self.client: TestClient | None = None
        self._update_ids = itertools.count(1)
        self._delivered = 0

    async def __aenter__(self) -> TelegramHarness:
        app = await create_app(self.runtime, channels=[telegram.setup])
        self.client = TestClient(TestServer(app, host="127.0.0.1"))
        await self.client.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.client is not None
        await self.client.close()
        await self.runtime.db.dispose()

    @property
    def channel(self) -> telegram.TelegramChannel:
        assert self.client is not None
        return self.client.app[telegram.TELEGRAM_KEY]

    def next_update_id(self) -> int:
        return next(self._update_ids)

    async def post(self, update: dict[str, Any], *, secret: str | None = SECRET) -> ClientResponse:
        assert self.client is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return await self.client.post(telegram.WEBHOOK_PATH, json=update, headers=headers)

    async def deliver(self, update: dict[str, Any]) -> None:
        """Deliver one update (webhook POST or getUpdates) and wait until it has been handled."""
        if self.webhook:
            response = await self.post(update)
            assert response.status == 200, await response.text()
        else:
            self.api.queue_update(update)
        self._delivered += 1
        await self.channel.updates.wait(finished=self._delivered)

    async def say(self, user_id: int, text: str, **kwargs: Any) -> list[dict[str, Any]]:
        """A user's message; returns the sendMessage calls it caused (text, reply_markup…)."""
        before = len(self.api.sent())
        await self.deliver(message_update(self.next_update_id(), user_id=user_id, text=text, **kwargs))
        return self.api.sent()[before:]

    async def press(self, user_id: int, data: str, **kwargs: Any) -> list[dict[str, Any]]:
        before = len(self.api.sent())
        await self.deliver(callback_update(self.next_update_id(), user_id=user_id, data=data, **kwargs))
        return self.api.sent()[before:]


def texts(sent: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("text", "")) for m in sent)


def buttons(sent: list[dict[str, Any]]) -> dict[str, str]:
    """label → callback_data of every inline button in these messages."""
    found: dict[str, str] = {}
    for message in sent:
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if "callback_data" in button:
                    found[button["text"]] = button["callback_data"]
    return found
