"""Telegram push sender: one outbox row → sendMessage, with the outcome the drain loop acts on.

Interface (bot/sender.py ``ChannelSender``)::

    sender = TelegramSender.from_settings(settings)     # None when TELEGRAM_BOT_TOKEN is empty
    # or TelegramSender(make_bot(token, api_base), global_rate=25, per_chat_interval=1.0, owns_bot=True)
    result = await sender.send(OutboundMessage(delivery_id=1, channel="telegram", external_id="42",
                                               text="…", choices=[{"label": "报名", "value": "join:3"}]))
    await sender.close()                                 # closes the HTTP session when it owns the bot

Outcomes:
    sent                       delivered (every piece of a long text; choices as an inline keyboard)
    retry, pause_all=True      429: ``retry_after`` seconds from Telegram; every send of this bot waits
    retry                      network error / 5xx / timeout: try again later (``retry_after`` ≈ 5 s)
    blocked                    403: the user blocked the bot (or left the group) → identity inactive
    failed                     400 and other permanent errors: never retried

Rates: ``rate_per_second`` (TELEGRAM_GLOBAL_RATE, default 25/s) and ``per_chat_interval`` (1 s) are
declared for the drain loop, which schedules by them. The sender is also safe to call directly: while a
429 pause is active it does not touch the API (answers ``retry`` with the remaining time and
``pause_all``), and it spaces its own calls by the same global and per-chat rates (waiting briefly), so
a caller that does not pace cannot get the bot flood-limited.
A long text goes out as several messages; a retry after a partial send repeats the pieces already sent
(outbox texts are short, so this is rare and harmless).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)

from bot.channels.telegram.render import render_reply
from bot.channels.telegram.settings import TelegramSettings
from bot.sender import OutboundMessage, SendResult
from handlers.messages import Choice, Reply

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TRANSIENT_RETRY_SECONDS = 5.0
BAD_TOKEN_RETRY_SECONDS = 300.0  # a wrong token is fixed by a redeploy; keep the messages meanwhile
_CHAT_SLOTS_KEPT = 10_000  # per-chat pacing entries kept before old ones are dropped


def make_bot(token: str, api_base: str) -> Bot:
    """A Bot on its own aiohttp session pointed at ``api_base`` (the real Bot API or a local server)."""
    return Bot(token=token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))


def chat_id_of(external_id: str) -> int | str:
    """Telegram chat ids are integers (groups negative); "@channel" names stay strings."""
    try:
        return int(external_id)
    except ValueError:
        return external_id


class TelegramSender:
    channel = CHANNEL

    def __init__(self, bot: Bot, *, global_rate: float = 25.0, per_chat_interval: float = 1.0,
                 owns_bot: bool = False, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.bot = bot
        self.rate_per_second = global_rate
        self.per_chat_interval = per_chat_interval
        self._owns_bot = owns_bot
        self._monotonic = monotonic
        self._paused_until = 0.0
        self._next_global = 0.0
        self._next_for_chat: dict[int | str, float] = {}
        self._slots = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: TelegramSettings) -> TelegramSender | None:
        if not settings.telegram_bot_token:
            return None
        bot = make_bot(settings.telegram_bot_token, settings.telegram_api_base)
        return cls(bot, global_rate=settings.telegram_global_rate, owns_bot=True)

    # ---- the 429 pause (shared by every send of this sender) ----
    @property
    def paused_for(self) -> float:
        """Seconds left of the current 429 pause (0 when none)."""
        return max(0.0, self._paused_until - self._monotonic())

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    def _paused_result(self) -> SendResult:
        return SendResult("retry", retry_after=self.paused_for, pause_all=True,
                          error="paused: Telegram asked to wait (429)")

    async def _take_slot(self, chat_id: int | str) -> None:
        """Wait for this chat's and the bot's next free sending slot."""
        async with self._slots:
            now = self._monotonic()
            start = max(now, self._next_global, self._next_for_chat.get(chat_id, 0.0))
            self._next_global = start + 1.0 / self.rate_per_second
            self._next_for_chat[chat_id] = start + self.per_chat_interval
            if len(self._next_for_chat) > _CHAT_SLOTS_KEPT:
                self._next_for_chat = {k: v for k, v in self._next_for_chat.items() if v > now}
        if start > now:
            await asyncio.sleep(start - now)

    # ---- ChannelSender ----
    async def send(self, message: OutboundMessage) -> SendResult:
        if self.paused_for > 0:
            return self._paused_result()
        chat_id = chat_id_of(message.external_id)
        reply = Reply(text=message.text, choices=[Choice(label=c["label"], value=c["value"]) for c in message.choices])
        for piece in render_reply(reply):
            await self._take_slot(chat_id)
            if self.paused_for > 0:  # a 429 arrived while this one waited for its slot
                return self._paused_result()
            try:
                await self.bot.send_message(chat_id=chat_id, text=piece.text, reply_markup=piece.keyboard)
            except TelegramRetryAfter as exc:
                self.pause(exc.retry_after)
                log.warning("telegram 429: pausing all sends for %ss", exc.retry_after)
                return SendResult("retry", retry_after=float(exc.retry_after), pause_all=True, error=exc.message)
            except TelegramForbiddenError as exc:
                return SendResult("blocked", error=exc.message)
            except TelegramMigrateToChat as exc:  # a group became a supergroup: the old id is dead
                return SendResult("failed", error=f"{exc.message} (migrate_to_chat_id={exc.migrate_to_chat_id})")
            except TelegramUnauthorizedError as exc:
                log.error("telegram rejected the bot token: %s", exc.message)
                return SendResult("retry", retry_after=BAD_TOKEN_RETRY_SECONDS, pause_all=True, error=exc.message)
            except TelegramEntityTooLarge as exc:  # a subclass of the network error, but permanent
                return SendResult("failed", error=exc.message[:500])
            except (TelegramNetworkError, TelegramServerError, ClientDecodeError, TimeoutError) as exc:
                return SendResult("retry", retry_after=TRANSIENT_RETRY_SECONDS, error=str(exc)[:500])
            except TelegramAPIError as exc:  # 400 Bad Request, 404, 409: retrying cannot help
                return SendResult("failed", error=exc.message[:500])
        return SendResult("sent")

    async def close(self) -> None:
        if self._owns_bot:
            await self.bot.session.close()
