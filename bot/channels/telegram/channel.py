"""Telegram channel: the webhook or long polling, updates → the core, its replies → the Bot API
(registry entry: ``plugin.py``).

An update arrives as JSON (the webhook's body, ``webhook.WebhookHandler``, or a getUpdates result) and is
read for the few fields the channel uses (``convert``): messages, shared locations, button presses
(callback queries) and "user blocked the bot" become ``Inbound`` for the core; its replies go out as Bot
API JSON on one aiohttp session (``replies``, ``api``): choices as an inline keyboard whose callback_data
is the choice value, long texts split under 4096 characters. No business rule lives here: what a command
or a button means (a typed payload, a forged one) is the core's business.

Why no aiogram Dispatcher: its routers, filters, middlewares and the pydantic ``Update`` with every nested
object were about a third of the channel's CPU per update (0.65 → 0.45 ms, 1,110 → 713 Python calls in
``bench/bench_telegram.py``'s adapter), for a handful of fields. Nor aiogram's ``Bot`` for the start-up
calls (setWebhook, setMyCommands, deleteWebhook, getMe): they are four JSON POSTs through ``api.BotApi``
like every other call, and importing aiogram for them cost ``serve`` ~120 MiB and ~4.5 s of start-up
(``tests/test_lean_start.py`` keeps it out).

Running (``setup(app, runtime)`` for bot/serve.py):
- no ``TELEGRAM_BOT_TOKEN`` → logs "Telegram is off" and adds nothing;
- ``TELEGRAM_WEBHOOK_URL`` set → POST /telegram (``webhook.WebhookHandler``; the
  ``X-Telegram-Bot-Api-Secret-Token`` header must equal ``TELEGRAM_WEBHOOK_SECRET``, else 401) and
  setWebhook on start;
- otherwise long polling (getUpdates) as a background task of the web app.
Either way the command menu is set on start (简体 by default and for "zh", English for "en").
``TELEGRAM_API_BASE`` points the bot at another Bot API server (tests use a local fake).

Platform behaviour handled here: in groups only commands for this bot, @mentions and replies to the
bot reach the core; a button pressed in a group is answered privately (or, when the bot may not
write to that user, in the callback answer). The update_id is the dedupe key (``u<update_id>``):
the core gives a redelivered update one effect and says it was a repeat, so nothing is sent again.
Each update carries its sender's language_code, which the core renders the replies in.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from bot.admission import Admission
from bot.certificates.web import CertificateFiles
from bot.channels.telegram.api import TRANSPORT_ERRORS, BotApi, BotApiError, BotBadRequest, BotForbidden
from bot.channels.telegram.convert import (
    CHANNEL,
    UPDATE_TYPES,
    ButtonPress,
    Malformed,
    MemberChange,
    Message,
    Update,
    button_press_to_inbound,
    message_to_inbound,
    parse_update,
)
from bot.channels.telegram.replies import DocumentLoader, deliver
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.telegram.webhook import WebhookHandler
from bot.runtime import Runtime
from common.i18n import N_, Msg, _, render
from common.lang import normalize_language
from handlers.engine import Engine
from handlers.messages import Inbound

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram"
MAX_CALLBACK_ANSWER = 200  # Telegram's limit for answerCallbackQuery text
SHUTDOWN_GRACE = 10.0  # seconds cleanup waits for updates still being handled
# admission without the app's settings (a channel built directly): Settings' defaults
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_WAIT = 30.0
POLL_TIMEOUT = 10  # getUpdates' long-poll seconds (below the API session's 30 s request timeout)
POLL_RETRY = 1.0  # seconds before polling again after a failed getUpdates, doubled up to …
POLL_MAX_RETRY = 30.0

# command → description; every command is understood by the core (its router's words); the list is everyone's,
# so it holds what volunteers use: coordinators find their commands in /help
MENU_COMMANDS: dict[str, Msg] = {
    "start": N_("开始 / 主菜单"),
    "register": N_("志愿者实名注册"),
    "activities": N_("近期志愿活动"),
    "search": N_("搜索活动（类别、日期、地区）"),
    "mine": N_("我的报名"),
    "hours": N_("我的志愿时长"),
    "records": N_("我的记录（可申请更正）"),
    "certificate": N_("开志愿服务证明"),
    "profile": N_("我的资料"),
    "myorg": N_("更换组织"),
    "help": N_("帮助"),
    "cancel": N_("取消当前操作"),
}
# Telegram's language_code (two letters) → the menu's language: 简体 by default and for every "zh"
# user (Telegram cannot tell 繁體 apart here), English for "en"
MENU_LANGUAGES: tuple[tuple[str | None, str], ...] = ((None, "zh-Hans"), ("zh", "zh-Hans"), ("en", "en"))


# a start-up call that fails so is logged and the channel goes on (the webhook endpoint serves, polling
# polls): Telegram unreachable or slow, or it answered an error or something that is not the Bot API's JSON
SETUP_ERRORS = (BotApiError, *TRANSPORT_ERRORS)


def menu_commands(lang: str) -> list[dict[str, str]]:
    """setMyCommands' ``commands`` (BotCommand objects as JSON)."""
    return [{"command": name, "description": render(text, lang)} for name, text in MENU_COMMANDS.items()]



# ---- platform behaviour -------------------------------------------------------------------------
def addressed_to_bot(message: Message, username: str | None, bot_id: int) -> bool:
    """Private chats: everything. Groups: commands (for us), @mentions of us, replies to us."""
    if not message.is_group:
        return True
    text = message.text or ""
    name = (username or "").lower()
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        _, at, target = command.partition("@")
        return not at or target.lower() == name
    return f"@{name}" in message.mentions or message.reply_to_user == bot_id


class UpdateTracker:
    """Counts updates in flight and finished: shutdown waits for the ones in flight (the webhook answers
    Telegram at once and works in the background), tests wait for the finished."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.finished = 0
        self._waiters: list[tuple[int | None, bool, asyncio.Future[None]]] = []

    def started(self) -> None:
        self.in_flight += 1

    def done(self) -> None:
        self.in_flight -= 1
        self.finished += 1
        if self._waiters:  # nobody waits while serving: no work per update then
            self._waiters = [w for w in self._waiters if not self._wake(*w)]

    def _wake(self, finished: int | None, idle: bool, future: asyncio.Future[None]) -> bool:
        if future.done():
            return True
        if (finished is None or self.finished >= finished) and (not idle or self.in_flight == 0):
            future.set_result(None)
            return True
        return False

    async def wait(self, *, finished: int | None = None, idle: bool = False) -> None:
        """Until ``finished`` updates are done in total, or (idle) none is in flight."""
        future = asyncio.get_running_loop().create_future()
        if not self._wake(finished, idle, future):
            self._waiters.append((finished, idle, future))
        await future


# ---- running ------------------------------------------------------------------------------------
class TelegramChannel:
    def __init__(self, core: Engine, settings: TelegramSettings, *, api: BotApi | None = None,
                 documents: DocumentLoader | None = None, admission: Admission | None = None) -> None:
        self.core = core
        self.settings = settings
        self.documents = documents
        # every Bot API call of the channel (start-up, getUpdates, replies); closed on cleanup
        self.api = api or BotApi(settings.telegram_bot_token, settings.telegram_api_base)
        self.updates = UpdateTracker()
        # webhook updates: answered at once, handled at most ``concurrency`` at a time (webhook.WebhookHandler)
        self.admission = admission or Admission(channel=CHANNEL, concurrency=DEFAULT_CONCURRENCY,
                                                max_wait=DEFAULT_MAX_WAIT)
        self._username: str | None = None  # the bot's @name, from getMe when first needed
        self._tasks: set[asyncio.Task[None]] = set()
        self._polled: set[asyncio.Task[None]] = set()
        self._polling: asyncio.Task[None] | None = None

    # ---- one update -------------------------------------------------------------------------------
    async def handle_update(self, update: Update) -> None:
        """One update to its end; a failure is logged (the update was acknowledged: nobody else sees it)."""
        self.updates.started()
        try:
            event = update.event
            if isinstance(event, Message):
                await self.on_message(event, update.update_id)
            elif isinstance(event, ButtonPress):
                await self.on_button_press(event, update.update_id)
            elif isinstance(event, MemberChange):
                await self.on_member_change(event, update.update_id)
        except Exception:
            log.exception("telegram update %s failed", update.update_id)
        finally:
            self.updates.done()

    async def bot_username(self) -> str | None:
        if self._username is None:
            me = await self.api.call("getMe", {})  # once: the name does not change while the bot runs
            self._username = str(me.get("username") or "") if isinstance(me, dict) else ""
        return self._username or None

    async def on_message(self, message: Message, update_id: int) -> None:
        # the bot's name matters only where it can occur: groups, and a text naming a bot ("/help@volunteer_bot")
        username = await self.bot_username() if message.is_group or "@" in (message.text or "") else None
        if not addressed_to_bot(message, username, self.api.id):
            return
        inbound = message_to_inbound(message, update_id, bot_username=username)
        handled = await self.core.handle_delivery(inbound)
        if handled.repeat:  # a redelivered update: its replies went out with the first delivery
            log.info("telegram update %s redelivered: nothing sent again", update_id)
            return
        await deliver(self.api, message.chat_id, handled.replies, self.documents)

    async def on_button_press(self, press: ButtonPress, update_id: int) -> None:
        inbound = button_press_to_inbound(press, update_id)
        handled = await self.core.handle_delivery(inbound)
        if handled.repeat:  # the first delivery answered the callback and sent the replies
            log.info("telegram update %s redelivered: nothing sent again", update_id)
            return
        replies = handled.replies
        answer: dict[str, Any] = {"callback_query_id": press.id}
        if not press.is_group:
            await self.api.call("answerCallbackQuery", answer)
            await deliver(self.api, press.sender.id, replies, self.documents)
            return
        # a button under a group post (e.g. an announcement's 报名): answer the person, not the group
        lang = normalize_language(press.sender.language_code)
        try:
            await deliver(self.api, press.sender.id, replies, self.documents)
        except (BotForbidden, BotBadRequest):
            # the user never started a private chat with the bot (or blocked it): the callback answer
            # is the only private channel left
            text = "\n".join(r.text for r in replies) or render(_("已收到。"), lang)
            if len(text) > MAX_CALLBACK_ANSWER:
                text = text[: MAX_CALLBACK_ANSWER - 1] + "…"
            await self.api.call("answerCallbackQuery", {**answer, "text": text, "show_alert": True})
            return
        await self.api.call("answerCallbackQuery", {**answer, "text": render(_("已私信回复你。"), lang)})

    async def on_member_change(self, change: MemberChange, update_id: int) -> None:
        """The user blocked (kicked) the bot in their private chat → the neutral 'unsubscribe'."""
        if change.chat_type != "private" or change.status != "kicked":
            return
        await self.core.handle(Inbound(channel=CHANNEL, user_id=str(change.user_id), event="unsubscribe",
                                       message_id=f"u{update_id}"))

    # ---- start and stop ---------------------------------------------------------------------------
    async def set_commands(self) -> None:
        for language_code, lang in MENU_LANGUAGES:
            body: dict[str, Any] = {"commands": menu_commands(lang)}
            if language_code is not None:  # absent: the menu of every language without its own
                body["language_code"] = language_code
            await self.api.call("setMyCommands", body)

    async def _prepare_webhook(self) -> None:
        try:
            await self.set_commands()
            await self.api.call("setWebhook", {
                "url": self.settings.telegram_webhook_url, "secret_token": self.settings.webhook_secret(),
                "allowed_updates": list(UPDATE_TYPES), "drop_pending_updates": False})
            log.info("Telegram webhook set to %s", self.settings.telegram_webhook_url)
        except SETUP_ERRORS as exc:
            log.error("Telegram setup failed (%s); the webhook endpoint still serves", _describe(exc))

    async def _poll(self) -> None:
        """getUpdates in a loop; each update runs as its own task, at most ``concurrency`` at once (the
        next getUpdates waits for a free one). Cancelled at shutdown; the tasks it started finish."""
        try:
            await self.set_commands()
            # polling and a webhook exclude each other
            await self.api.call("deleteWebhook", {"drop_pending_updates": False})
        except SETUP_ERRORS as exc:
            log.error("Telegram setup failed (%s); polling anyway", _describe(exc))
        slots = asyncio.Semaphore(self.admission.concurrency)
        offset = 0
        retry = POLL_RETRY
        while True:
            try:
                batch = await self.api.call("getUpdates", {"offset": offset, "timeout": POLL_TIMEOUT,
                                                           "allowed_updates": list(UPDATE_TYPES)})
                if not isinstance(batch, list):
                    raise BotApiError("getUpdates", 200, "the result is not a list")
            except Exception as exc:  # network, Bot API error (409: a webhook is set), anything: poll on
                log.warning("Telegram getUpdates failed (%s); polling again in %.0f s", exc, retry)
                await asyncio.sleep(retry)
                retry = min(retry * 2, POLL_MAX_RETRY)
                continue
            retry = POLL_RETRY
            for raw in batch:
                if isinstance(raw, dict) and type(raw.get("update_id")) is int:
                    offset = max(offset, raw["update_id"] + 1)  # confirmed by the next getUpdates
                try:
                    update = parse_update(raw)
                except Malformed as exc:
                    log.warning("telegram update skipped: %s", exc)
                    continue
                await slots.acquire()
                task = asyncio.create_task(self._run_polled(update, slots))
                self._polled.add(task)
                task.add_done_callback(self._polled.discard)

    async def _run_polled(self, update: Update, slots: asyncio.Semaphore) -> None:
        try:
            await self.handle_update(update)
        finally:
            slots.release()

    async def on_startup(self, _app: web.Application) -> None:
        if self.settings.telegram_webhook_url:
            task = asyncio.create_task(self._prepare_webhook())  # never hold the web app's start on Telegram
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._polling = asyncio.create_task(self._poll())
            log.info("Telegram long polling started")

    async def on_shutdown(self, _app: web.Application) -> None:
        """Stop taking updates and let the ones in flight finish (before the API session closes)."""
        if self._polling is not None:
            self._polling.cancel()  # an unconfirmed getUpdates batch is delivered again on the next start
            await asyncio.gather(self._polling, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # webhook updates were acknowledged (Telegram will not send them again): let the admitted ones
        # finish their replies, then whatever polling still handles
        await self.admission.drain(grace=self.admission.max_wait + SHUTDOWN_GRACE)
        if self._polled:
            _, still = await asyncio.wait(set(self._polled), timeout=SHUTDOWN_GRACE)
            if still:
                log.warning("%d Telegram update(s) still in flight at shutdown", len(still))

    async def on_cleanup(self, _app: web.Application) -> None:
        await self.api.close()


def _describe(exc: BaseException) -> str:
    """One line for the log: a Bot API error says itself; a network error by its class too (a timeout's
    text is empty)."""
    if isinstance(exc, BotApiError):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}".rstrip(": ")


TELEGRAM_KEY = web.AppKey("telegram", TelegramChannel)


async def setup(app: web.Application, runtime: Runtime) -> None:
    settings = runtime.settings
    if not settings.telegram_enabled:
        log.info("Telegram is off (TELEGRAM_BOT_TOKEN is empty)")
        return
    files = CertificateFiles(runtime.sessions, settings)
    admission = Admission(channel=CHANNEL, concurrency=settings.core_concurrency,
                          max_wait=settings.admission_max_wait, slots=runtime.turn_slots, metrics=runtime.metrics)
    channel = TelegramChannel(runtime.core, settings, documents=files.load, admission=admission)
    app[TELEGRAM_KEY] = channel
    app.on_shutdown.append(channel.on_shutdown)
    if settings.telegram_webhook_url:
        handler = WebhookHandler(channel.handle_update, admission=admission, secret_token=settings.webhook_secret())
        handler.register(app, path=WEBHOOK_PATH)
    app.on_startup.append(channel.on_startup)
    app.on_cleanup.append(channel.on_cleanup)
