"""The Telegram push sender against the local fake Bot API: sent, 429 pause, 403 blocked, 400 failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bot.channels.telegram.sender import TelegramSender, make_bot
from bot.config import Settings
from bot.sender import OutboundMessage
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramAPI


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def sender(api: FakeTelegramAPI) -> AsyncIterator[TelegramSender]:
    # a high rate so pacing does not slow the tests down (pacing has its own test)
    sender = TelegramSender(make_bot(DEFAULT_TOKEN, api.base_url), global_rate=1000, per_chat_interval=0,
                            owns_bot=True)
    yield sender
    await sender.close()


def message(chat: str = "42", text: str = "明天 9:00 敬老院探访，别忘了哦", delivery_id: int = 1,
            choices: list[dict[str, str]] | None = None) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, channel="telegram", external_id=chat, text=text,
                           choices=choices or [])


async def test_sends_text_with_choices_as_inline_keyboard(api: FakeTelegramAPI, sender: TelegramSender) -> None:
    result = await sender.send(message(choices=[{"label": "查看活动", "value": "act:7"}]))
    assert result.outcome == "sent"
    [sent] = api.sent(chat_id=42)
    assert sent["text"] == "明天 9:00 敬老院探访，别忘了哦"
    assert sent["reply_markup"]["inline_keyboard"] == [[{"text": "查看活动", "callback_data": "act:7"}]]


async def test_long_text_is_split_under_4096(api: FakeTelegramAPI, sender: TelegramSender) -> None:
    text = "\n".join(f"第 {i} 行：社区志愿服务通知" for i in range(600))
    assert (await sender.send(message(text=text))).outcome == "sent"
    texts = api.sent_texts(42)
    assert len(texts) >= 2 and all(len(t) <= 4096 for t in texts)
    assert "\n".join(texts) == text


async def test_429_pauses_every_send_until_retry_after(api: FakeTelegramAPI, sender: TelegramSender) -> None:
    api.fail("sendMessage", status=429, retry_after=1)
    first = await sender.send(message(chat="42"))
    assert first.outcome == "retry" and first.pause_all and first.retry_after == 1
    # another chat during the pause: no API call at all (the fake would count a flood violation)
    calls = len(api.calls_to("sendMessage"))
    second = await sender.send(message(chat="43", delivery_id=2))
    assert second.outcome == "retry" and second.pause_all and 0 < (second.retry_after or 0) <= 1
    assert len(api.calls_to("sendMessage")) == calls
    assert api.flood_violations == 0
    await _sleep_until(lambda: sender.paused_for == 0)
    assert (await sender.send(message(chat="43", delivery_id=2))).outcome == "sent"
    assert api.flood_violations == 0


async def test_403_means_blocked_and_400_is_failed_without_retry(api: FakeTelegramAPI,
                                                                 sender: TelegramSender) -> None:
    api.block(42)
    blocked = await sender.send(message(chat="42"))
    assert blocked.outcome == "blocked" and "blocked" in (blocked.error or "")
    api.fail("sendMessage", status=400, description="Bad Request: chat not found")
    failed = await sender.send(message(chat="77"))
    assert failed.outcome == "failed" and "chat not found" in (failed.error or "")
    assert failed.retry_after is None and not failed.pause_all
    assert len(api.calls_to("sendMessage")) == 2  # the sender itself never retried


async def test_server_errors_retry_and_a_bad_token_pauses(api: FakeTelegramAPI, sender: TelegramSender) -> None:
    api.fail("sendMessage", status=502, description="Bad Gateway")
    transient = await sender.send(message(chat="42"))
    assert transient.outcome == "retry" and not transient.pause_all and transient.retry_after
    wrong = TelegramSender(make_bot("999:wrong-token", api.base_url), owns_bot=True)
    try:
        refused = await wrong.send(message(chat="42"))
    finally:
        await wrong.close()
    assert refused.outcome == "retry" and refused.pause_all and "Unauthorized" in (refused.error or "")
    assert (await sender.send(message(chat="42"))).outcome == "sent"


async def test_unreachable_api_is_a_plain_retry(api: FakeTelegramAPI) -> None:
    await api.close()
    sender = TelegramSender(make_bot(DEFAULT_TOKEN, api.base_url), owns_bot=True)
    try:
        result = await sender.send(message())
    finally:
        await sender.close()
    assert result.outcome == "retry" and not result.pause_all and result.retry_after


async def test_direct_callers_are_paced_per_chat(api: FakeTelegramAPI) -> None:
    sender = TelegramSender(make_bot(DEFAULT_TOKEN, api.base_url), global_rate=1000, per_chat_interval=0.3,
                            owns_bot=True)
    started = time.monotonic()
    try:
        for i in range(3):
            assert (await sender.send(message(chat="42", delivery_id=i))).outcome == "sent"
        assert (await sender.send(message(chat="43", delivery_id=9))).outcome == "sent"
    finally:
        await sender.close()
    to_42 = [c.at for c in api.calls_to("sendMessage") if c.params["chat_id"] == 42]
    # each message to chat 42 waits for its slot: the i-th no earlier than i intervals after the start
    assert all(at - started >= i * 0.3 for i, at in enumerate(to_42)), [at - started for at in to_42]
    other = next(c.at for c in api.calls_to("sendMessage") if c.params["chat_id"] == 43)
    assert other - to_42[-1] < 0.3  # another chat does not wait out 42's interval


async def test_from_settings_is_off_without_token_and_declares_rates() -> None:
    assert TelegramSender.from_settings(Settings(telegram_bot_token="", _env_file=None)) is None
    sender = TelegramSender.from_settings(Settings(telegram_bot_token=DEFAULT_TOKEN, telegram_global_rate=10,
                                                   _env_file=None))
    assert sender is not None and sender.rate_per_second == 10 and sender.per_chat_interval == 1.0
    await sender.close()


async def _sleep_until(condition: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
