"""One turn of a conversation: who is talking, their dialog state, and the replies being built."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import Catalogs, Text, default_catalogs, render
from common.text import WEEKDAYS
from handlers.context import CoreOptions
from handlers.i18n import localize
from handlers.messages import Choice, Inbound, Reply
from handlers.payloads import Payload
from handlers.privacy import FieldCipher
from models import DialogState, Identity, Person
from services.people import is_admin


@dataclass
class Turn:
    session: AsyncSession
    inbound: Inbound
    identity: Identity
    person: Person
    state: DialogState
    options: CoreOptions
    cipher: FieldCipher
    now: datetime  # aware, UTC
    lang: str = "zh-Hans"
    admin_bootstrap: bool = False
    replies: list[Reply] = field(default_factory=list)
    catalogs: Catalogs = field(default_factory=default_catalogs)

    @property
    def typed(self) -> bool:
        """True when the user typed (a number or words) rather than pressed a button."""
        return self.inbound.payload is None

    async def admin(self) -> bool:
        """An admin by role, or by the ADMINS setting (bootstrap)."""
        return await is_admin(self.session, person_id=self.person.id, bootstrap=self.admin_bootstrap)

    # ---- language -------------------------------------------------------------------------
    # New code passes one Text (``_("…")``); the (zh, en) pairs are the old form, kept only until
    # every feature has moved to the catalogs.
    def text(self, value: Text) -> str:
        """A text rendered in this turn's language."""
        return render(value, self.lang, self.catalogs)

    def t(self, zh: Text, en: str | None = None) -> str:
        if en is None:
            return self.text(zh)
        assert isinstance(zh, str)
        return localize(self.lang, zh, en)

    def say(self, zh: Text, en: str | list[Choice] | None = None, choices: list[Choice] | None = None) -> Reply:
        if isinstance(en, str):
            text = self.t(zh, en)
        else:
            text, choices = self.text(zh), en if en is not None else choices
        reply = Reply(text=text, choices=list(choices or []), lang=self.lang)
        self.replies.append(reply)
        return reply

    def choice(self, zh: Text, en: str, value: str | None = None) -> Choice:
        if value is None:  # new form: choice(label, value)
            return Choice(label=self.text(zh), value=en)
        assert isinstance(zh, str)
        return Choice(label=self.t(zh, en), value=value)

    # ---- dialog state ---------------------------------------------------------------------
    def ask(self, flow: str, step: str, zh: Text, en: str | list[Choice] | None = None,
            choices: list[Choice] | None = None) -> Reply:
        self.state.flow = flow
        self.state.step = step
        return self.say(zh, en, choices)

    def end_flow(self) -> None:
        self.state.flow = None
        self.state.step = None
        self.state.data = {}

    @property
    def data(self) -> dict:
        return self.state.data

    def set_data(self, **values: object) -> None:
        # reassign so SQLAlchemy sees the JSON column change
        self.state.data = {**self.state.data, **values}

    # ---- time -----------------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.options.timezone)

    def local(self, value: datetime) -> datetime:
        """Naive wall-clock time in the deployment's zone, for display and date arithmetic."""
        return value.astimezone(self.tz).replace(tzinfo=None)

    def to_utc(self, local_value: datetime) -> datetime:
        return local_value.replace(tzinfo=self.tz).astimezone(UTC)

    @property
    def today(self) -> date:
        return self.local(self.now).date()

    def fmt_dt(self, value: datetime) -> str:
        local = self.local(value)
        weekday = WEEKDAYS[local.weekday()]
        if self.lang == "en":
            return local.strftime("%a %Y-%m-%d %H:%M")
        return local.strftime("%Y-%m-%d") + self.t(f"(周{weekday})", "") + local.strftime(" %H:%M")

    def fmt_span(self, start: datetime, end: datetime) -> str:
        end_local = self.local(end)
        same_day = self.local(start).date() == end_local.date()
        return f"{self.fmt_dt(start)}–{end_local.strftime('%H:%M') if same_day else self.fmt_dt(end)}"

    def days_ago(self, days: int) -> datetime:
        return self.now - timedelta(days=days)


StepHandler = Callable[[Turn, str], Awaitable[None]]
CommandHandler = Callable[[Turn, Any], Awaitable[None]]


class Role(enum.Enum):
    """Who may run a command; the engine checks it before the handler runs."""

    COORDINATOR = "coordinator"  # a coordinator of some organization, or an admin
    ADMIN = "admin"


@dataclass(frozen=True)
class Command:
    handler: CommandHandler
    payload: type[Payload] | None = None  # the typed argument; None → the raw text after "name:"
    requires: Role | None = None


class FeatureRouter:
    """One router per feature: its commands with their typed words and roles, its flows and steps."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: dict[str, Command] = {}
        self.steps: dict[tuple[str, str], StepHandler] = {}
        self.flows: dict[str, Any] = {}  # name → handlers.flows.Flow
        self.words: dict[str, str] = {}  # typed word (简体, lower case) → command name
        self.arg_commands: set[str] = set()  # commands that take one word typed after them

    def command(
        self,
        *names: str,
        words: Iterable[str] = (),
        takes_arg: bool = False,
        payload: type[Payload] | None = None,
        requires: Role | None = None,
    ) -> Callable[[CommandHandler], CommandHandler]:
        """Register a command under button/slash ``names``; ``words`` typed alone run it too."""

        def register(func: CommandHandler) -> CommandHandler:
            for name in names:
                self.commands[name] = Command(func, payload, requires)
            for word in words:
                self.words[word.lower()] = names[0]
            if takes_arg:
                self.arg_commands.add(names[0])
            return func

        return register

    def step(self, flow: str, *steps: str) -> Callable[[StepHandler], StepHandler]:
        def register(func: StepHandler) -> StepHandler:
            for step in steps:
                self.steps[(flow, step)] = func
            return func

        return register
