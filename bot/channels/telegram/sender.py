"""Telegram push sender: one outbox row → sendMessage, with the outcome the drain loop acts on.

Interface (bot/sender.py ``ChannelSender``)::

    sender = TelegramSender.from_settings(settings)     # None when TELEGRAM_BOT_TOKEN is empty
    # or TelegramSender(BotApi(token, api_base), global_rate=25, per_chat_interval=1.0, owns_bot=True)
    result = await sender.send(OutboundMessage(delivery_id=1, channel="telegram", external_id="42",
                                               text="…", choices=[{"label": "报名", "value": "join:3"}]))
    await sender.close()                                 # closes the API's HTTP session when it owns it

Outcomes:
    sent                       delivered (every piece of a long text; choices as an inline keyboard)
    retry, pause_all=True      429: ``retry_after`` seconds from Telegram; every send of this bot waits
    retry                      network error / 5xx / timeout: try again later (``retry_after`` ≈ 5 s)
    blocked                    403: the user blocked the bot (or left the group) → identity inactive
    failed                     400 and other permanent errors: never retried

Why not ``bot.send_message``: building aiogram method and result objects costs ~1.6 ms of CPU per
message, four times a plain JSON POST, which capped the outbox at ~370/s on one core. The sender POSTs
the Bot API JSON through ``api.BotApi`` (one aiohttp session) as bytes, a broadcast's text and keyboard
encoded once; a delivered answer is recognised by its first bytes, an error answer is read as JSON and
mapped to an outcome, never into a Message.

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
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from bot.channels.telegram.api import TRANSPORT_ERRORS, BotApi
from bot.channels.telegram.render import MAX_MESSAGE_CHARS, fits_callback_data, keyboard_for, render_reply
from bot.channels.telegram.settings import TelegramSettings
from bot.sender import OutboundMessage, SendResult, lateness_credit, paced_start
from handlers.messages import Choice, Reply

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TRANSIENT_RETRY_SECONDS = 5.0
BAD_TOKEN_RETRY_SECONDS = 300.0  # a wrong token is fixed by a redeploy; keep the messages meanwhile
_CHAT_SLOTS_KEPT = 10_000  # per-chat pacing entries kept before old ones are dropped
_KEYBOARDS_KEPT = 256  # a broadcast's rows share one keyboard: build its JSON once
_TEXTS_KEPT = 256  # and one text: encode it once
# a delivered message's answer starts so (the real Bot API writes no spaces; aiohttp's json_response does)
_OK = (b'{"ok":true', b'{"ok": true')

Piece = tuple[bytes, bytes | None]  # the text and the reply_markup, each as JSON


def make_bot(token: str, api_base: str) -> BotApi:
    """The bot's Bot API client, pointed at ``api_base`` (the real Bot API or a local server); its own
    HTTP session, opened on the first call."""
    return BotApi(token, api_base)


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def chat_id_of(external_id: str) -> int | str:
    """Telegram chat ids are integers (groups negative); "@channel" names stay strings."""
    try:
        return int(external_id)
    except ValueError:
        return external_id


class TelegramSender:
    channel = CHANNEL

    def __init__(self, api: BotApi, *, global_rate: float = 25.0, per_chat_interval: float = 1.0,
                 owns_bot: bool = False, monotonic: Callable[[], float] = time.monotonic) -> None:
        """``owns_bot``: ``close`` closes ``api`` (else whoever made it does)."""
        self.rate_per_second = global_rate
        self.per_chat_interval = per_chat_interval
        self._owns_bot = owns_bot
        self._monotonic = monotonic
        self._api = api
        self._paused_until = 0.0
        self._next_global = 0.0
        self._credit = lateness_credit(global_rate)
        self._next_for_chat: dict[int | str, float] = {}
        self._recent: deque[float] = deque(maxlen=max(1, int(global_rate)))  # start times of the last sends
        self._keyboards: dict[tuple[tuple[str, str], ...], bytes | None] = {}
        self._texts: dict[str, bytes] = {}
        self.calls = 0  # HTTP calls made (metrics)

    @classmethod
    def from_settings(cls, settings: TelegramSettings) -> TelegramSender | None:
        if not settings.telegram_bot_token:
            return None
        api = BotApi(settings.telegram_bot_token, settings.telegram_api_base)
        return cls(api, global_rate=settings.telegram_global_rate, owns_bot=True)

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
        """Wait for this chat's and the bot's next free sending slot. No lock: nothing awaits between
        reading and moving the slots. The global slot may run a little behind (``lateness_credit``)
        so a caller that was late once is not slowed for good; a chat's interval is exact."""
        now = self._monotonic()
        start = max(paced_start(self._next_global, now, 1.0 / self.rate_per_second, self._credit),
                    self._next_for_chat.get(chat_id, 0.0))
        self._next_global = start + 1.0 / self.rate_per_second
        if self.per_chat_interval > 0:
            start = max(start, now)  # the interval counts from the real send
            self._next_for_chat[chat_id] = start + self.per_chat_interval
            if len(self._next_for_chat) > _CHAT_SLOTS_KEPT:
                self._next_for_chat = {k: v for k, v in self._next_for_chat.items() if v > now}
        if start > now:
            await asyncio.sleep(start - now)
        # and never more than the rate within any one second, however late sends bunch up; checked again
        # after each wait: every send that found the window full slept until the same oldest start, and
        # only the first to wake may take the place that frees
        recent = self._recent
        while True:
            wait = recent[0] + 1.0 - self._monotonic() if len(recent) == recent.maxlen else 0.0
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        recent.append(self._monotonic())

    def _keyboard(self, choices: list[dict[str, str]]) -> bytes | None:
        key = tuple((c["label"], c["value"]) for c in choices)
        markup = self._keyboards.get(key, False)
        if markup is False:
            markup = _json(keyboard_for([Choice(label=label, value=value) for label, value in key]))
            if len(self._keyboards) >= _KEYBOARDS_KEPT:
                self._keyboards.clear()
            self._keyboards[key] = markup
        return markup  # type: ignore[return-value]

    def _text(self, text: str) -> bytes:
        encoded = self._texts.get(text)
        if encoded is None:
            if len(self._texts) >= _TEXTS_KEPT:
                self._texts.clear()
            encoded = self._texts[text] = _json(text)
        return encoded

    def _pieces(self, message: OutboundMessage) -> list[Piece]:
        text = message.text
        if not message.choices and 0 < len(text) <= MAX_MESSAGE_CHARS:
            return [(self._text(text), None)]  # the common case: no objects beyond the JSON body
        choices = [Choice(label=c["label"], value=c["value"]) for c in message.choices]
        if 0 < len(text) <= MAX_MESSAGE_CHARS and fits_callback_data(choices):
            return [(self._text(text), self._keyboard(message.choices))]
        return [(_json(piece.text), _json(piece.keyboard) if piece.keyboard is not None else None)
                for piece in render_reply(Reply(text=text, choices=choices))]

    # ---- ChannelSender ----
    async def send(self, message: OutboundMessage) -> SendResult:
        if self.paused_for > 0:
            return self._paused_result()
        chat_id = chat_id_of(message.external_id)
        chat = _json(chat_id)
        for text, markup in self._pieces(message):
            await self._take_slot(chat_id)
            if self.paused_for > 0:  # a 429 arrived while this one waited for its slot
                return self._paused_result()
            # the body as bytes: a broadcast's text (and keyboard) is encoded once, not once per message
            if markup is None:
                body = b'{"chat_id":%b,"text":%b}' % (chat, text)
            else:
                body = b'{"chat_id":%b,"text":%b,"reply_markup":%b}' % (chat, text, markup)
            result = await self._post(body)
            if result is not None:
                return result
        return SendResult("sent")

    async def _post(self, body: bytes) -> SendResult | None:
        """One sendMessage (its JSON body); None when it was delivered, else what to do with the row.
        A delivered message's answer is not parsed: its first bytes say so."""
        self.calls += 1
        try:
            status, raw = await self._api.post("sendMessage", body)
        except TRANSPORT_ERRORS as exc:
            return SendResult("retry", retry_after=TRANSIENT_RETRY_SECONDS,
                              error=f"{exc.__class__.__name__}: {exc}"[:500])
        if status == 200 and raw.startswith(_OK):
            return None
        try:
            answer = json.loads(raw)
            if not isinstance(answer, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            return SendResult("retry", retry_after=TRANSIENT_RETRY_SECONDS,
                              error=f"HTTP {status}: undecodable answer {raw[:200]!r}"[:500])
        if answer.get("ok") is True:
            return None
        return outcome_of_error(status, answer, self)

    async def close(self) -> None:
        if self._owns_bot:
            await self._api.close()


def outcome_of_error(status: int, answer: dict[str, Any], sender: TelegramSender) -> SendResult:
    """A Bot API error answer → the outcome (the same mapping aiogram's exceptions used to give)."""
    code = int(answer.get("error_code") or status)
    description = str(answer.get("description") or f"HTTP {status}")
    parameters = answer.get("parameters") or {}
    if parameters.get("retry_after") is not None or code == 429:
        retry_after = float(parameters.get("retry_after") or 1)
        sender.pause(retry_after)
        log.warning("telegram 429: pausing all sends for %ss", retry_after)
        return SendResult("retry", retry_after=retry_after, pause_all=True, error=description)
    if parameters.get("migrate_to_chat_id") is not None:  # a group became a supergroup: the old id is dead
        return SendResult("failed", error=f"{description} (migrate_to_chat_id={parameters['migrate_to_chat_id']})")
    if code == 403:
        return SendResult("blocked", error=description)
    if code == 401:
        log.error("telegram rejected the bot token: %s", description)
        return SendResult("retry", retry_after=BAD_TOKEN_RETRY_SECONDS, pause_all=True, error=description)
    if code == 413:  # too large: permanent
        return SendResult("failed", error=description[:500])
    if code >= 500:
        return SendResult("retry", retry_after=TRANSIENT_RETRY_SECONDS, error=description[:500])
    return SendResult("failed", error=description[:500])  # 400 Bad Request, 404, 409: retrying cannot help
