"""Telegram channel (aiogram 3): the dispatcher, webhook / long polling (registry entry: ``plugin.py``).

One aiogram Router converts (``convert``) messages, button presses (callback queries), shared locations and
"user blocked the bot" into ``Inbound`` for the core and renders its replies (choices as an inline
keyboard whose callback_data is the choice value, long texts split under 4096 characters). No
business rule lives here: what a command or a button means is the core's business.

Running (``setup(app, runtime)`` for bot/serve.py):
- no ``TELEGRAM_BOT_TOKEN`` → logs "Telegram is off" and adds nothing;
- ``TELEGRAM_WEBHOOK_URL`` set → POST /telegram (``webhook.WebhookHandler``; the
  ``X-Telegram-Bot-Api-Secret-Token`` header must equal ``TELEGRAM_WEBHOOK_SECRET``, else 401) and
  setWebhook on start;
- otherwise long polling as a background task of the web app.
Either way the command menu is set on start (简体 by default and for "zh", English for "en").
``TELEGRAM_API_BASE`` points the bot at another Bot API server (tests use a local fake).

Platform behaviour handled here: in groups only commands for this bot, @mentions and replies to the
bot reach the core; a button pressed in a group is answered privately (or, when the bot may not
write to that user, in the callback answer). The update_id is the dedupe key (``u<update_id>``):
the core gives a redelivered update one effect and says it was a repeat, so nothing is sent again.
The webhook handler (``webhook``) checks the secret header and the JSON before aiogram sees it, and admits
the update (``bot.admission``: at most CORE_CONCURRENCY at once, a bounded queue, 503 past it). Replies go
out as Bot API JSON on one aiohttp session (``replies``, ``api``), not as aiogram method objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, CallbackQuery, ChatMemberUpdated, Message, TelegramObject, Update
from aiohttp import web

from bot.admission import Admission
from bot.certificates.web import CertificateFiles
from bot.channels.telegram.api import BotApi, BotBadRequest, BotForbidden
from bot.channels.telegram.convert import CHANNEL, GROUP_TYPES, callback_to_inbound, message_to_inbound
from bot.channels.telegram.replies import DocumentLoader, deliver
from bot.channels.telegram.sender import make_bot
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


def menu_commands(lang: str) -> list[BotCommand]:
    return [BotCommand(command=name, description=render(text, lang)) for name, text in MENU_COMMANDS.items()]


# ---- filters (async: aiogram runs sync filters through a thread) --------------------------------
async def addressed_to_bot(message: Message, bot: Bot) -> bool:
    """Private chats: everything. Groups: commands (for us), @mentions of us, replies to us."""
    if message.chat.type not in GROUP_TYPES:
        return True
    text = message.text or message.caption or ""
    me = await bot.me()  # cached by aiogram after the first call
    username = (me.username or "").lower()
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        _, at, target = command.partition("@")
        return not at or target.lower() == username
    for entity in message.entities or message.caption_entities or []:
        if entity.type == "mention" and entity.extract_from(text).lower() == f"@{username}":
            return True
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == me.id)


async def has_location(message: Message) -> bool:
    return message.location is not None


async def blocked_or_unblocked(event: ChatMemberUpdated) -> bool:
    return event.chat.type == "private"


# ---- handlers -----------------------------------------------------------------------------------
async def on_message(message: Message, bot: Bot, api: BotApi, core: Engine, event_update: Update,
                     documents: DocumentLoader | None = None) -> None:
    me = await bot.me()
    inbound = message_to_inbound(message, event_update.update_id, bot_username=me.username)
    handled = await core.handle_delivery(inbound)
    if handled.repeat:  # a redelivered update: its replies went out with the first delivery
        log.info("telegram update %s redelivered: nothing sent again", event_update.update_id)
        return
    await deliver(api, message.chat.id, handled.replies, documents)


async def on_callback(callback: CallbackQuery, api: BotApi, core: Engine, event_update: Update,
                      documents: DocumentLoader | None = None) -> None:
    inbound = callback_to_inbound(callback, event_update.update_id)
    handled = await core.handle_delivery(inbound)
    if handled.repeat:  # the first delivery answered the callback and sent the replies
        log.info("telegram update %s redelivered: nothing sent again", event_update.update_id)
        return
    replies = handled.replies
    answer: dict[str, Any] = {"callback_query_id": callback.id}
    if not inbound.is_group:
        await api.call("answerCallbackQuery", answer)
        await deliver(api, callback.from_user.id, replies, documents)
        return
    # a button under a group post (e.g. an announcement's 报名): answer the person, not the group
    lang = normalize_language(callback.from_user.language_code)
    try:
        await deliver(api, callback.from_user.id, replies, documents)
    except (BotForbidden, BotBadRequest):
        # the user never started a private chat with the bot (or blocked it): the callback answer
        # is the only private channel left
        text = "\n".join(r.text for r in replies) or render(_("已收到。"), lang)
        if len(text) > MAX_CALLBACK_ANSWER:
            text = text[: MAX_CALLBACK_ANSWER - 1] + "…"
        await api.call("answerCallbackQuery", {**answer, "text": text, "show_alert": True})
        return
    await api.call("answerCallbackQuery", {**answer, "text": render(_("已私信回复你。"), lang)})


async def on_my_chat_member(event: ChatMemberUpdated, core: Engine, event_update: Update) -> None:
    """The user blocked (kicked) the bot in their private chat → the neutral 'unsubscribe'."""
    if event.new_chat_member.status != "kicked":
        return
    await core.handle(Inbound(channel=CHANNEL, user_id=str(event.from_user.id), event="unsubscribe",
                              message_id=f"u{event_update.update_id}"))


def create_router() -> Router:
    router = Router(name="telegram")
    router.message.filter(addressed_to_bot)
    router.message.register(on_message, has_location)
    router.message.register(on_message)
    router.callback_query.register(on_callback)
    router.my_chat_member.register(on_my_chat_member, blocked_or_unblocked)
    return router


class UpdateTracker(BaseMiddleware):
    """Counts updates in flight and finished: shutdown waits for the ones in flight (the webhook
    handler answers Telegram at once and works in the background), tests wait for the finished."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.finished = 0
        self._changed = asyncio.Condition()

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        self.in_flight += 1
        try:
            return await handler(event, data)
        finally:
            self.in_flight -= 1
            self.finished += 1
            async with self._changed:
                self._changed.notify_all()

    async def wait(self, *, finished: int | None = None, idle: bool = False) -> None:
        """Until ``finished`` updates are done in total, or (idle) none is in flight."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: (finished is None or self.finished >= finished) and (not idle or self.in_flight == 0))


def create_dispatcher(core: Engine, api: BotApi,
                      documents: DocumentLoader | None = None) -> tuple[Dispatcher, UpdateTracker]:
    # no FSM: dialogs are the core's (its middleware would look up a state for every update)
    dispatcher = Dispatcher(core=core, api=api, documents=documents, disable_fsm=True)
    tracker = UpdateTracker()
    dispatcher.update.outer_middleware(tracker)
    dispatcher.include_router(create_router())
    return dispatcher, tracker


# ---- running ------------------------------------------------------------------------------------
class TelegramChannel:
    def __init__(self, core: Engine, settings: TelegramSettings, *, bot: Bot | None = None,
                 documents: DocumentLoader | None = None, admission: Admission | None = None) -> None:
        self.settings = settings
        self.bot = bot or make_bot(settings.telegram_bot_token, settings.telegram_api_base)
        self.api = BotApi(self.bot)  # replies go out as Bot API JSON (replies.deliver)
        self.dispatcher, self.updates = create_dispatcher(core, self.api, documents)
        # webhook updates: answered at once, handled at most ``concurrency`` at a time (webhook.WebhookHandler)
        self.admission = admission or Admission(channel=CHANNEL, concurrency=DEFAULT_CONCURRENCY,
                                                max_wait=DEFAULT_MAX_WAIT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._polling: asyncio.Task[None] | None = None

    async def set_commands(self) -> None:
        for language_code, lang in MENU_LANGUAGES:
            await self.bot.set_my_commands(commands=menu_commands(lang), language_code=language_code)

    async def _prepare_webhook(self) -> None:
        try:
            await self.set_commands()
            await self.bot.set_webhook(
                url=self.settings.telegram_webhook_url, secret_token=self.settings.webhook_secret(),
                allowed_updates=self.dispatcher.resolve_used_update_types(), drop_pending_updates=False)
            log.info("Telegram webhook set to %s", self.settings.telegram_webhook_url)
        except TelegramAPIError as exc:
            log.error("Telegram setup failed (%s); the webhook endpoint still serves", exc)

    async def _poll(self) -> None:
        try:
            await self.set_commands()
            await self.bot.delete_webhook(drop_pending_updates=False)  # polling and a webhook exclude each other
        except TelegramAPIError as exc:
            log.error("Telegram setup failed (%s); polling anyway", exc)
        await self.dispatcher.start_polling(self.bot, handle_signals=False, close_bot_session=False,
                                            tasks_concurrency_limit=self.admission.concurrency)

    async def on_startup(self, _app: web.Application) -> None:
        if self.settings.telegram_webhook_url:
            task = asyncio.create_task(self._prepare_webhook())  # never hold the web app's start on Telegram
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._polling = asyncio.create_task(self._poll())
            log.info("Telegram long polling started")

    async def on_shutdown(self, _app: web.Application) -> None:
        """Stop taking updates and let the ones in flight finish (before the bot session closes)."""
        if self._polling is not None:
            if not self._polling.done():
                try:
                    await self.dispatcher.stop_polling()
                except RuntimeError:  # not polling yet (still setting up): cancel the setup instead
                    self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # webhook updates were acknowledged (Telegram will not send them again): let the admitted ones
        # finish their replies, then whatever polling still handles
        await self.admission.drain(grace=self.admission.max_wait + SHUTDOWN_GRACE)
        try:
            await asyncio.wait_for(self.updates.wait(idle=True), SHUTDOWN_GRACE)
        except TimeoutError:
            log.warning("%d Telegram update(s) still in flight at shutdown", self.updates.in_flight)

    async def on_cleanup(self, _app: web.Application) -> None:
        await self.api.close()
        await self.bot.session.close()


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
    app.on_shutdown.append(channel.on_shutdown)  # before the webhook handler's own (it closes the session)
    if settings.telegram_webhook_url:
        handler = WebhookHandler(dispatcher=channel.dispatcher, bot=channel.bot, admission=admission,
                                 secret_token=settings.webhook_secret())
        handler.register(app, path=WEBHOOK_PATH)
    app.on_startup.append(channel.on_startup)
    app.on_cleanup.append(channel.on_cleanup)
