"""The Bot API client without aiogram (bot/channels/telegram/api.py): the URLs and token rules aiogram had,
and the channel's start-up calls failing the way they did (one clear log line, the channel goes on)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram import channel as telegram
from bot.channels.telegram.api import BotApi, BotApiError, InvalidToken
from bot.config import Settings
from handlers.engine import Engine
from tests.fakes.telegram_api import BOT_ID, DEFAULT_TOKEN, FakeTelegramAPI
from tests.telegram_harness import TelegramHarness, texts

ALICE = 5001
BASES = ("https://api.telegram.org", "http://127.0.0.1:8081/", "https://proxy.example.org/tg/")


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.mark.parametrize("base", BASES)
def test_method_urls_are_the_ones_aiogram_built(base: str) -> None:
    """TELEGRAM_API_BASE keeps its meaning: aiogram (still installed for the bench) is the reference."""
    server = pytest.importorskip("aiogram.client.telegram").TelegramAPIServer.from_base(base)
    api = BotApi(DEFAULT_TOKEN, base)
    for method in ("getMe", "setWebhook", "sendMessage", "sendDocument", "getUpdates"):
        assert api.url(method) == server.api_url(token=DEFAULT_TOKEN, method=method)
    assert BotApi(DEFAULT_TOKEN).url("getMe") == f"https://api.telegram.org/bot{DEFAULT_TOKEN}/getMe"


@pytest.mark.parametrize("token", ["123:abc", "0042:x", "123:abc:def", "1:🙂"])
def test_a_well_formed_token_gives_the_bot_id(token: str) -> None:
    assert BotApi(token).id == int(token.split(":")[0])
    assert BotApi(DEFAULT_TOKEN).id == BOT_ID


@pytest.mark.parametrize("token", ["", "123", "123:", ":abc", "abc:def", "12 3:abc", "123:ab c", " 123:abc",
                                   "123:abc\n"])
def test_a_malformed_token_is_refused_as_aiogram_refused_it(token: str) -> None:
    with pytest.raises(InvalidToken, match="TELEGRAM_BOT_TOKEN"):
        BotApi(token)
    tokens = pytest.importorskip("aiogram.utils.token")
    with pytest.raises(tokens.TokenValidationError):
        tokens.validate_token(token)


async def test_call_maps_an_answer_that_is_not_json_to_a_bot_api_error(api: FakeTelegramAPI) -> None:
    api.fail("getMe", status=502, body="<html>Bad Gateway</html>")
    client = BotApi(DEFAULT_TOKEN, api.base_url)
    try:
        with pytest.raises(BotApiError, match="undecodable answer") as caught:
            await client.call("getMe", {})
        assert caught.value.code == 502
        assert (await client.call("getMe", {}))["id"] == BOT_ID  # the next call is answered
    finally:
        await client.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _channel(core: Engine, db_url: str, api_base: str) -> telegram.TelegramChannel:
    settings = Settings(_env_file=None, database_url=db_url, telegram_bot_token=DEFAULT_TOKEN,
                        telegram_api_base=api_base, telegram_webhook_url="https://bot.example.org/telegram")
    return telegram.TelegramChannel(core, settings)


async def _setup_logged(channel: telegram.TelegramChannel, caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The webhook's start-up calls run (and the channel cleaned up): the one line the channel logged."""
    try:
        with caplog.at_level(logging.ERROR, logger=telegram.__name__):
            await channel._prepare_webhook()
    finally:
        await channel.on_cleanup(None)  # type: ignore[arg-type]
    [record] = [r for r in caplog.records if r.name == telegram.__name__]
    return record


async def test_webhook_setup_with_telegram_unreachable_logs_one_clear_line(
        core: Engine, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    channel = _channel(core, db_url, f"http://127.0.0.1:{_closed_port()}")
    record = await _setup_logged(channel, caplog)
    assert record.getMessage().startswith("Telegram setup failed (ClientConnectorError: ")
    assert record.getMessage().endswith("); the webhook endpoint still serves")


async def test_webhook_setup_answered_with_a_proxy_page_logs_one_clear_line(
        api: FakeTelegramAPI, core: Engine, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    api.fail("setWebhook", status=502, body="<html>Bad Gateway</html>")
    channel = _channel(core, db_url, api.base_url)
    record = await _setup_logged(channel, caplog)
    assert "Telegram setWebhook: 502 undecodable answer b'<html>Bad Gateway</html>'" in record.getMessage()
    assert len(api.calls_to("setMyCommands")) == 3 and api.webhook is None


async def test_webhook_setup_refused_by_telegram_still_serves_updates(
        api: FakeTelegramAPI, core: Engine, sessions, db_url: str,  # noqa: ANN001
        caplog: pytest.LogCaptureFixture) -> None:
    api.fail("setMyCommands", status=401, description="Unauthorized")
    with caplog.at_level(logging.ERROR, logger=telegram.__name__):
        async with TelegramHarness(api, core, sessions, db_url, webhook=True) as tg:
            assert "志愿助手" in texts(await tg.say(ALICE, "/help"))
            await tg.channel._prepare_webhook()  # the second time Telegram takes it
            assert api.webhook is not None
    failed = [r.getMessage() for r in caplog.records if r.name == telegram.__name__]
    assert failed == ["Telegram setup failed (Telegram setMyCommands: 401 Unauthorized); the webhook endpoint "
                      "still serves"]


async def test_polling_setup_that_fails_polls_anyway(api: FakeTelegramAPI, core: Engine, sessions,  # noqa: ANN001
                                                     db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    api.fail("deleteWebhook", status=502, body="<html>Bad Gateway</html>")
    with caplog.at_level(logging.ERROR, logger=telegram.__name__):
        async with TelegramHarness(api, core, sessions, db_url, webhook=False) as tg:
            # the setup calls come before the first getUpdates: an answered update means they were made
            assert "志愿助手" in texts(await tg.say(ALICE, "/help"))
    failed = [r.getMessage() for r in caplog.records if r.name == telegram.__name__]
    assert len(failed) == 1 and failed[0].startswith("Telegram setup failed (Telegram deleteWebhook: 502 ")
    assert failed[0].endswith("polling anyway")


async def test_the_bot_name_for_groups_comes_from_one_get_me(api: FakeTelegramAPI, core: Engine,
                                                             db_url: str) -> None:
    channel = _channel(core, db_url, api.base_url)
    try:
        assert await channel.bot_username() == api.bot_username
        assert await channel.bot_username() == api.bot_username
    finally:
        await channel.on_cleanup(None)  # type: ignore[arg-type]
    assert len(api.calls_to("getMe")) == 1
