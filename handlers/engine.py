"""The core: one neutral inbound message in, replies out.

Every channel (console, WeChat, Telegram) calls :meth:`Engine.handle`. Dialog state, dedupe keys
and notices live in the database, so any process can continue any conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from common.i18n import Text, _, default_catalogs, join, ngettext, render
from common.lang import detect_language, has_han, normalize_language, to_simplified
from common.text import clean_text, normalize_width
from handlers import (
    activities,
    announce,
    broadcasts,
    certificate,
    corrections,
    corrections_review,
    hours,
    hours_review,
    identity_link,
    ledger,
    members,
    menu,
    observances,
    registration,
    reminders,
    requests,
    understanding,
    web_login,
)
from handlers.context import CoreOptions
from handlers.flows import Flow
from handlers.messages import Choice, Inbound, Reply
from handlers.payloads import EXPIRED, InvalidPayload, parse_int
from handlers.permissions import DENIED
from handlers.privacy import FieldCipher, open_json, seal_json
from handlers.turn import Command, FeatureRouter, Role, StepHandler, Turn
from handlers.words import load_words
from models import utcnow
from models.db import SessionFactory
from models.hotpath import TurnConnection
from services.conversation import (
    ClaimedMessage,
    DialogRow,
    MessageTaken,
    TurnSession,
    finish_turn,
    message_claim,
    open_turn,
    stored_replies,
    unsubscribe,
)
from services.notify import claim_held_notices, holds_notices_now, notice_text

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000
_WORDS = load_words("engine_words")
CANCEL_WORDS = frozenset(_WORDS["cancel"])

# money in a free-text message: the no-charging rule (志愿服务条例 Art 21) answers it
MONEY_WORDS = re.compile(_WORDS["money_pattern"])


def default_routers() -> list[FeatureRouter]:
    return [menu.router, registration.router, activities.router, hours.router, hours_review.router, identity_link.router, announce.router, requests.router,
            reminders.router, broadcasts.router, observances.router, ledger.router, certificate.router,
            web_login.router, members.router,
            corrections.router, corrections_review.router]


@dataclass(frozen=True, slots=True)
class Handled:
    """The replies to one delivery, and whether an earlier delivery of its message id had the effect.

    A repeat's replies are the stored ones: a channel that answers in the request (WeChat's passive
    reply) sends them again, a channel that pushes (Telegram) already sent them and sends nothing.
    """

    replies: list[Reply]
    repeat: bool = False


class Engine:
    def __init__(
        self,
        sessions: SessionFactory,
        options: CoreOptions,
        *,
        clock: Callable[[], datetime] = utcnow,
        routers: Iterable[FeatureRouter] | None = None,
    ) -> None:
        self.sessions = sessions
        self.options = options
        self.clock = clock
        self.cipher = FieldCipher(options.encryption_key)
        self.commands: dict[str, Command] = {}
        self.steps: dict[tuple[str, str], StepHandler] = {}
        self.flows: dict[str, Flow] = {}
        # typed words and argument-taking commands are declared by each feature on its router
        self.words: dict[str, str] = {}
        self.arg_commands: set[str] = set()
        for router in routers if routers is not None else default_routers():
            self.commands.update(router.commands)
            self.steps.update(router.steps)
            self.flows.update(router.flows)
            self.words.update(router.words)
            self.arg_commands |= router.arg_commands
        # the answer to "你是想…" when the classifier was unsure (handlers/understanding.py)
        self.steps[(understanding.FLOW, understanding.STEP)] = self._understood
        # SQLite has one writer: queueing turns here is far cheaper than its busy-wait back-off,
        # which otherwise gives p99 latencies of seconds under concurrent messages.
        bind = sessions.kw.get("bind")
        assert isinstance(bind, AsyncEngine), "the session factory is bound to an AsyncEngine"
        # where a turn's connection comes from (sessions are opened on it when a feature needs one)
        self.database = bind
        self._single_writer = asyncio.Lock() if bind.dialect.name == "sqlite" else None

    def write_slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """For a channel's own small writes next to the turns (e.g. WeChat's nonce memory): on SQLite
        they queue with the turns instead of meeting the write lock in SQLite's busy-wait back-off,
        which otherwise puts a second on the p99."""
        return self._turn_slot()

    @contextlib.asynccontextmanager
    async def _turn_slot(self) -> AsyncIterator[None]:
        if self._single_writer is None:
            yield
            return
        async with self._single_writer:
            yield

    # ---- entry point ------------------------------------------------------------------------
    async def handle(self, inbound: Inbound) -> list[Reply]:
        return (await self.handle_delivery(inbound)).replies

    async def handle_delivery(self, inbound: Inbound) -> Handled:
        """One turn, and whether this delivery repeats one already handled. It never raises
        (cancellation aside): see :meth:`_recover` for what a failure does."""
        inbound = clean_inbound(inbound)
        try:
            if inbound.message_id is None:
                async with self._turn_slot():
                    return Handled(await self._turn(inbound))
            return await self._handle_once(inbound)
        except Exception as error:  # the one place where a turn's unexpected failure ends
            return Handled(await self._recover(inbound, error))

    async def _recover(self, inbound: Inbound, error: Exception) -> list[Reply]:
        """An unexpected exception: the turn's transaction is already rolled back (its session closed
        without a commit), and with it the message id's dedupe row, so a platform's retry of the same
        message runs afresh instead of replaying an apology. The person gets a short apology with an
        id an operator can find in the log, and the menu; their dialog is ended (a draft that makes a
        step fail would fail again on every answer), and the menu's choices are what "1" picks next.

        The log line holds the turn id, the failing command or flow step and the exception's class:
        no message text, no user id, no SQL parameters (the exception's text may quote them). The
        traceback goes to DEBUG under the same turn id.
        """
        turn_id = secrets.token_hex(4)
        log.error("turn %s failed in %s: %s", turn_id, failed_in(error), type(error).__name__)
        log.debug("turn %s traceback", turn_id, exc_info=error)
        apology = _("抱歉，刚才出了点问题，这一步没有完成（编号 {turn_id}）。请从菜单重新开始。", turn_id=turn_id)
        menu = replace(inbound, text=None, payload="menu", event=None, location=None, message_id=None)
        try:
            async with self._turn_slot():
                replies = await self._turn(menu)
        except Exception as second:  # e.g. the database is down: the apology alone
            log.error("turn %s: the menu after the failure failed too: %s", turn_id, type(second).__name__)
            log.debug("turn %s menu traceback", turn_id, exc_info=second)
            lang = normalize_language(inbound.language) or "zh-Hans"
            return [Reply(text=render(apology, lang, default_catalogs()), lang=lang)]
        lang = replies[-1].lang if replies else "zh-Hans"
        return [Reply(text=render(apology, lang, default_catalogs()), lang=lang), *replies]

    async def _handle_once(self, inbound: Inbound, *, attempts: int = 3) -> Handled:
        """The same message id has one effect; a retry (even a concurrent one) gets the same replies."""
        assert inbound.message_id is not None
        async with self._turn_slot():
            try:
                return Handled(await self._turn(inbound, message_claim(channel=inbound.channel,
                                                                       message_id=inbound.message_id)))
            except MessageTaken:
                pass
        stored = await self._wait_for_reply(inbound.channel, inbound.message_id)
        if stored is not None:
            return Handled(stored, repeat=True)
        if attempts > 1:  # the first delivery failed and rolled back: this one does the work
            return await self._handle_once(inbound, attempts=attempts - 1)
        return Handled([], repeat=True)

    async def _wait_for_reply(self, channel: str, message_id: str, wait_seconds: float = 10.0) -> list[Reply] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            async with self.sessions() as session:
                known, replies = await stored_replies(session, channel=channel, message_id=message_id)
            if not known:
                return None
            if replies is not None:
                return [Reply.from_dict(r) for r in open_json(self.cipher, replies)]
            if loop.time() > deadline:
                return []
            await asyncio.sleep(0.05)

    # ---- one turn ---------------------------------------------------------------------------
    async def _turn(self, inbound: Inbound, claim: ClaimedMessage | None = None) -> list[Reply]:
        """One turn in one transaction, committed at its end; on any failure (or :class:`MessageTaken`)
        everything is rolled back, the message id's claim included."""
        db = await TurnConnection.open(self.database)
        sessions = TurnSession(self.sessions, db)
        try:
            return await self._process(db, sessions, inbound, claim=claim)
        except BaseException:
            if sessions.session is not None:
                await sessions.session.close()  # rolls back what the session began
            await db.rollback()
            raise
        finally:
            await db.close()

    async def _process(self, db: TurnConnection, sessions: TurnSession, inbound: Inbound, *,
                       claim: ClaimedMessage | None = None) -> list[Reply]:
        now = self.clock()
        unsubscribing = inbound.event == "unsubscribe"
        speaker = await open_turn(
            db, sessions, channel=inbound.channel, external_id=inbound.user_id, now=now,
            display_name=inbound.display_name, language=normalize_language(inbound.language),
            unsubscribing=unsubscribing, claim=claim,
        )
        identity, person, state = speaker.identity, speaker.person, speaker.state
        sessions.attach(identity, person)
        turn = Turn(
            open_session=sessions,
            reads=sessions,
            inbound=inbound,
            identity=identity,
            person=person,
            state=state,
            options=self.options,
            cipher=self.cipher,
            now=now,
            lang=identity.language or person.language or "zh-Hans",
            admin_bootstrap=f"{inbound.channel}:{inbound.user_id}" in self.options.admins,
            roleless_person_id=None if speaker.has_roles else person.id,
        )
        self._expire_idle_flow(turn, state)
        await self._dispatch(turn)
        if unsubscribing:
            unsubscribe(speaker)
        notices = []
        held_now = sessions.session is not None and holds_notices_now(sessions.session, identity_id=identity.id)
        if speaker.has_held_notices or held_now:
            notices = await claim_held_notices(turn.session, identity_id=identity.id, now=now)
        if notices:
            rows: list[Text] = [ngettext("你有 {count} 条新通知：", "你有 {count} 条新通知：", len(notices))]
            rows += [f"· {notice_text(n, turn.lang)}" for n in notices]
            turn.replies.insert(0, Reply(text=turn.text(join(rows)), lang=turn.lang))
        last_choices = next((r.choices for r in reversed(turn.replies) if r.choices), [])
        sealed = seal_json(self.cipher, [r.to_dict() for r in turn.replies]) if claim is not None else None
        await finish_turn(db, sessions, speaker=speaker, language=turn.lang, now=now, seen=claim, sealed=sealed,
                          choices=[{"label": c.label, "value": c.value} for c in last_choices])
        return turn.replies

    def _expire_idle_flow(self, turn: Turn, state: DialogRow) -> None:
        """A dialog left idle past the timeout ends now, its draft (and any personal data in it) deleted."""
        if state.flow is None or state.updated_at is None:
            return
        if turn.now - state.updated_at <= self.options.flow_timeout:
            return
        turn.end_flow()
        state.choices = []
        turn.say(_("上次没有完成的对话已超时结束，填写的内容已删除。"))

    async def _dispatch(self, turn: Turn) -> None:
        inbound = turn.inbound
        if inbound.event:
            await self._dispatch_event(turn)
            return
        value = inbound.payload
        text = normalize_width(inbound.text or "").strip()
        if value is None and not text:
            turn.say(_("请发送文字消息。"))
            return
        if len(text) > MAX_TEXT_CHARS:
            turn.say(_("消息太长了（{count} 字），请控制在 {max_text_chars} 字以内再发一次。", count=len(text), max_text_chars=MAX_TEXT_CHARS))
            return
        if value is None:
            value = self._match_choice(turn, text)
        simplified = to_simplified(text).lower()
        if value is None and simplified in CANCEL_WORDS:
            had_flow = turn.state.flow is not None
            turn.end_flow()
            if had_flow:
                turn.say(_("好的，已取消。发送「帮助」看看我能做什么。"))
            else:
                await self._run_command(turn, "help")
            return
        command = simplified.partition(" ")[0]
        arg = text.partition(" ")[2].strip()  # arguments keep their case (check-in codes do)
        words = self.words
        takes_arg = words.get(command) in self.arg_commands and re.fullmatch(r"[\w-]{1,64}", arg)
        if value is None and (simplified in words or simplified.startswith("/") or takes_arg):
            if command in words and (takes_arg or not arg):
                # "绑定 123456" → "link:123456"
                value = words[command] + (f":{arg}" if arg else "")
            elif command.startswith("/"):
                # "/join 12" → "join:12"; "/start act_5" → "start:act_5"
                value = command[1:] + (f":{arg}" if arg else "")
            elif simplified in words:
                value = words[simplified]
            if not command.startswith("/"):
                self._follow_language(turn, text)
        if value is not None:
            await self._run_value(turn, value)
            return
        if turn.state.flow and turn.state.step:
            step = self._step_handler(turn)
            if step is not None:
                await self._run_step(turn, step, text)
                return
            turn.end_flow()
        self._follow_language(turn, text)
        if MONEY_WORDS.search(simplified):  # 条例 Art 21: volunteers may not take money; say so at once
            await self._run_command(turn, "fee", text)
            return
        if corrections.asks_correction(text):  # "12月3日那次应该是3小时": 办法 Art 13
            await self._run_command(turn, "correction", text)
            return
        await understanding.route(turn, text, partial(self._run_command, turn), self.commands.__contains__)

    async def _understood(self, turn: Turn, text: str) -> None:
        await understanding.answer(turn, text, partial(self._run_command, turn), self.commands.__contains__)

    @staticmethod
    def _follow_language(turn: Turn, text: str) -> None:
        """Answer in the language the user writes; "ok" or "hi" alone is too thin to switch to English.

        Chinese that reads the same in 简体 and 繁體 (「我要求助」) keeps the person's script; it
        only moves someone who was answered in English to 简体.
        """
        language = detect_language(text)
        if language == "en" and sum(ch.isascii() and ch.isalpha() for ch in text) < 4:
            return
        if language:
            turn.lang = language
        elif turn.lang == "en" and has_han(text):
            turn.lang = "zh-Hans"

    def _match_choice(self, turn: Turn, text: str) -> str | None:
        """'2' picks the second choice of the last reply; typing a choice's label picks it too."""
        choices = turn.state.choices or []
        if not choices:
            return None
        number = parse_int(text, low=1, high=len(choices))
        if number is not None:
            return choices[number - 1]["value"]
        folded = to_simplified(text).lower()
        for choice in choices:
            if to_simplified(choice["label"]).lower() == folded:
                return choice["value"]
        return None

    async def _run_value(self, turn: Turn, value: str) -> None:
        name, _sep, arg = value.partition(":")
        if name == "a":  # an answer to the current dialog step
            step = self._step_handler(turn)
            if step is None:
                turn.say(EXPIRED)
                await self._run_command(turn, "help")
                return
            await self._run_step(turn, step, value)
            return
        if name not in self.commands:
            turn.say(_("没看懂这个指令。"))
            await self._run_command(turn, "help")
            return
        # a command starts afresh: whatever dialog was open is left
        turn.end_flow()
        await self._invoke(turn, name, arg)

    async def _run_command(self, turn: Turn, name: str, arg: str = "") -> None:
        await self._invoke(turn, name, arg)

    @staticmethod
    async def _run_step(turn: Turn, step: StepHandler, text: str) -> None:
        where = f"flow {turn.state.flow}.{turn.state.step}"
        try:
            await step(turn, text)
        except Exception as error:
            mark_failure(error, where)
            raise

    def _step_handler(self, turn: Turn) -> StepHandler | None:
        flow = self.flows.get(turn.state.flow or "")
        if flow is not None:
            return flow.handle if flow.requires is None else self._guarded(flow)
        return self.steps.get((turn.state.flow or "", turn.state.step or ""))

    def _guarded(self, flow: Flow) -> StepHandler:
        """A flow's step that checks the flow's role first: a role revoked mid-dialog ends the dialog."""

        async def step(turn: Turn, text: str) -> None:
            assert flow.requires is not None
            if not await self._allowed(turn, flow.requires):
                turn.end_flow()
                turn.say(DENIED)
                return
            await flow.handle(turn, text)

        return step

    async def _invoke(self, turn: Turn, name: str, arg: str) -> None:
        """Run a command: its role first, then its typed argument, then the handler."""
        command = self.commands[name]
        if command.requires is not None and not await self._allowed(turn, command.requires):
            turn.say(DENIED)
            return
        argument: object = arg
        if command.payload is not None:
            raw = arg.strip().lstrip("#")  # "/take #12" as the list shows the number
            try:
                argument = None if command.optional and not raw else command.payload.from_arg(raw)
            except InvalidPayload:
                turn.say(EXPIRED)
                await self._invoke(turn, "help", "")
                return
        try:
            await command.handler(turn, argument)
        except Exception as error:
            mark_failure(error, f"command {name}")
            raise

    @staticmethod
    async def _allowed(turn: Turn, role: Role) -> bool:
        admin = await turn.admin()
        if role is Role.ADMIN or admin:
            return admin
        return await turn.coordinates_any()

    async def _dispatch_event(self, turn: Turn) -> None:
        inbound = turn.inbound
        event = inbound.event
        if event == "unsubscribe":  # the identity goes inactive when the turn closes (_process)
            turn.end_flow()
            return
        if event == "location" and inbound.location is not None:
            await self._run_command(turn, "near", f"{inbound.location.latitude},{inbound.location.longitude}")
            return
        if event == "subscribe":
            await self._run_command(turn, "welcome")
            if inbound.payload:
                await self._run_value(turn, inbound.payload)
            return
        if event in ("scan", "menu") and inbound.payload:
            await self._run_value(turn, inbound.payload)
            return
        # unknown events are acknowledged silently: never crash on what a platform adds later
        log.info("ignored event %s from %s", event, inbound.channel)


_WHERE = "turn failed in "


def mark_failure(error: BaseException, where: str) -> None:
    """Note the innermost command or flow step an exception left (names only, no user data)."""
    if failed_in(error) == "engine":
        error.add_note(_WHERE + where)


def failed_in(error: BaseException) -> str:
    notes = getattr(error, "__notes__", ())
    return next((note.removeprefix(_WHERE) for note in notes if note.startswith(_WHERE)), "engine")


def clean_inbound(inbound: Inbound) -> Inbound:
    """The typed and platform-given strings without what no column stores (NUL, lone surrogates)."""
    fields = {name: clean_text(value) for name in ("text", "payload", "display_name", "language")
              if isinstance(value := getattr(inbound, name), str) and value != clean_text(value)}
    return replace(inbound, **fields) if fields else inbound


__all__ = ["Choice", "Engine", "Inbound", "Reply"]
