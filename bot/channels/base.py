"""What a chat platform plugs into: the ``Channel`` protocol every registry entry implements.

A channel adapter only converts: platform updates → ``handlers.messages.Inbound`` for the core, the
core's ``Reply`` → platform messages. Everything a user can do is decided by the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:  # type-only: the CLI lists the channels without loading the engine or aiohttp
    from aiohttp import web
    from pydantic import BaseModel

    from bot.config import Settings
    from bot.runtime import Runtime
    from bot.sender import ChannelSender


class Channel(Protocol):
    """One registered channel, built from the settings by its class (``Channel(settings)``)."""

    name: ClassVar[str]  # the ``Identity.channel`` / ``Delivery.channel`` value
    # has a push sender for outbox rows; False → its notices are held and shown with the user's next
    # reply (services.notify.INLINE_ONLY_CHANNELS lists these for the core)
    can_push: ClassVar[bool]

    def __init__(self, settings: Settings) -> None: ...

    @property
    def settings(self) -> BaseModel:
        """This channel's own settings model (a part of ``bot.config.Settings``)."""
        ...

    @property
    def enabled(self) -> bool:
        """Its settings switch it on (e.g. a token is set); only enabled channels are mounted."""
        ...

    async def mount(self, app: web.Application, runtime: Runtime) -> None:
        """Add routes, startup/cleanup hooks or a polling task to ``serve``'s web app."""
        ...

    def sender(self, runtime: Runtime) -> ChannelSender | None:
        """The push sender for the outbox drainer; None when it cannot push or is not configured."""
        ...
