"""One turn of a conversation: who is talking, their dialog state, and the replies being built."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import N_, Catalogs, Text, _, default_catalogs, render
from handlers.context import CoreOptions
from handlers.messages import Choice, Inbound, Reply
from handlers.payloads import Payload
from handlers.privacy import FieldCipher
from models import Identity, Person
from services.conversation import DialogRow
from services.people import NO_ROLES, Roles, roles_of
from services.rows import RowSource

WEEKDAY_NAMES = (N_("周一"), N_("周二"), N_("周三"), N_("周四"), N_("周五"), N_("周六"), N_("周日"))


@dataclass
class Turn:
    # the turn's ORM session, opened by the first feature that asks for it (see the session property)
    open_session: Callable[[], AsyncSession]
    # where a read-only feature's rows come from (services/rows.py; the engine's TurnSession): the turn's
    # connection, in its transaction, without opening the session (flushed first when it is open). A feature
    # that needs the session anyway in this turn gains nothing from it, but loses nothing either.
    reads: RowSource
    inbound: Inbound
    identity: Identity
    person: Person
    state: DialogRow
    options: CoreOptions
    cipher: FieldCipher
    now: datetime  # aware, UTC
    lang: str = "zh-Hans"
    admin_bootstrap: bool = False
    replies: list[Reply] = field(default_factory=list)
    catalogs: Catalogs = field(default_factory=default_catalogs)
    # the person the speaker's SELECT found holding no role: their roles() needs no query
    roleless_person_id: int | None = None
    _roles: Roles | None = field(default=None, repr=False)  # read once per turn, when first needed

    @property
    def session(self) -> AsyncSession:
        """The turn's session, in the turn's transaction, with the speaker's identity and person in it.
        Opened on first use: a turn whose feature reads nothing more (a volunteer's 帮助) has none."""
        return self.open_session()

    @property
    def typed(self) -> bool:
        """True when the user typed (a number or words) rather than pressed a button."""
        return self.inbound.payload is None

    async def roles(self) -> Roles:
        """The person's roles, queried once per turn (the menu and the role checks share them)."""
        if self._roles is None:
            assert self.person.id is not None
            if self.person.id == self.roleless_person_id:  # not after a link made this turn's person another
                self._roles = NO_ROLES
            else:
                self._roles = await roles_of(self.reads, person_id=self.person.id)
        return self._roles

    async def admin(self) -> bool:
        """An admin by role, or by the ADMINS setting (bootstrap)."""
        return self.admin_bootstrap or (await self.roles()).admin

    async def coordinates_any(self) -> bool:
        """A coordinator of at least one organization."""
        return bool((await self.roles()).coordinates)

    # ---- language -------------------------------------------------------------------------
    def text(self, value: Text) -> str:
        """A text rendered in this turn's language."""
        return render(value, self.lang, self.catalogs)

    def say(self, text: Text, choices: list[Choice] | None = None) -> Reply:
        reply = Reply(text=self.text(text), choices=list(choices or []), lang=self.lang)
        self.replies.append(reply)
        return reply

    def choice(self, label: Text, value: str) -> Choice:
        return Choice(label=self.text(label), value=value)

    # ---- dialog state ---------------------------------------------------------------------
    def ask(self, flow: str, step: str, text: Text, choices: list[Choice] | None = None) -> Reply:
        self.state.flow = flow
        self.state.step = step
        return self.say(text, choices)

    def end_flow(self) -> None:
        self.state.flow = None
        self.state.step = None
        self.state.data = {}

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
        return self.text(_("{date}({weekday}) {time}", date=f"{local:%Y-%m-%d}", weekday=WEEKDAY_NAMES[local.weekday()],
                           time=f"{local:%H:%M}"))

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
    optional: bool = False  # with a payload: the command also runs bare ("接单" alone), getting None


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
        optional: bool = False,
        requires: Role | None = None,
    ) -> Callable[[CommandHandler], CommandHandler]:
        """Register a command under button/slash ``names``; ``words`` typed alone run it too."""

        def register(func: CommandHandler) -> CommandHandler:
            for name in names:
                self.commands[name] = Command(func, payload, requires, optional)
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
