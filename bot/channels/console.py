"""Console channel: the terminal (interactive or piped) through exactly the core other channels use.

``volunteer-bot chat`` runs it; it adds nothing to ``serve``'s web app and cannot push: notices for a
console user are held and shown with their next reply (``services.notify.INLINE_ONLY_CHANNELS``)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, ClassVar, TextIO

from bot.channels.render import render_text
from handlers.messages import Inbound, Reply

if TYPE_CHECKING:  # type-only: the registry lists ConsolePlugin without loading the engine or aiohttp
    from aiohttp import web

    from bot.config import Settings
    from bot.runtime import Runtime
    from bot.sender import ChannelSender
    from handlers.engine import Engine

CHANNEL = "console"


class ConsoleChannel:
    def __init__(self, core: Engine, *, user: str, language: str | None = None, out: TextIO | None = None) -> None:
        self.core = core
        self.user = user
        self.language = language
        # read when built, not when this module was imported: a CLI run in-process (the tests) swaps sys.stdout
        self.out = out if out is not None else sys.stdout

    def to_inbound(self, line: str) -> Inbound:
        return Inbound(channel=CHANNEL, user_id=self.user, text=line, language=self.language)

    @staticmethod
    def render(replies: list[Reply]) -> str:
        return "\n\n".join(render_text(r) for r in replies)

    async def send(self, line: str) -> str:
        """One line in, the rendered replies out (what tests call)."""
        return self.render(await self.core.handle(self.to_inbound(line)))

    async def run(self, source: TextIO = sys.stdin) -> None:
        """Until end of input. Nothing typed ends it otherwise: the engine answers every line (see
        ``Engine.handle``), bytes that are not UTF-8 read as U+FFFD, and what the terminal cannot
        show is escaped rather than raised."""
        for stream in (source, self.out):
            if hasattr(stream, "reconfigure"):  # a real TextIOWrapper (not a test's StringIO)
                stream.reconfigure(errors="replace" if stream is source else "backslashreplace")
        interactive = source.isatty()
        while True:
            if interactive:
                self.out.write("> ")
                self.out.flush()
            line = await asyncio.to_thread(source.readline)
            if not line:
                break
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if not interactive:
                self.out.write(f"> {line}\n")
            self.out.write(await self.send(line) + "\n\n")
            self.out.flush()


class ConsolePlugin:
    """Registry entry (``bot/channels/registry.py``): always on, no web presence, no push sender."""

    name: ClassVar[str] = CHANNEL
    can_push: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # the console has no settings of its own

    @property
    def enabled(self) -> bool:
        return True

    async def mount(self, app: web.Application, runtime: Runtime) -> None:
        return None

    def sender(self, runtime: Runtime) -> ChannelSender | None:
        return None
