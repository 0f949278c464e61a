"""The Telegram registry entry (``bot/channels/registry.py``).

Light on purpose: the channel module (its web endpoint, the Bot API client, the certificate files
behind documents) is imported only when Telegram is switched on and mounted, or its sender is needed.
No aiogram either way (``tests/test_lean_start.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.telegram.sender import TelegramSender
    from bot.channels.telegram.settings import TelegramSettings
    from bot.config import Settings
    from bot.runtime import Runtime

# the same value as convert.CHANNEL (tests/test_lean_start.py): importing convert here would load
# the platform library
CHANNEL = "telegram"


class TelegramPlugin:
    name: ClassVar[str] = CHANNEL
    can_push: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings: TelegramSettings = settings

    @property
    def enabled(self) -> bool:
        return self.settings.telegram_enabled

    async def mount(self, app: web.Application, runtime: Runtime) -> None:
        from bot.channels.telegram.channel import setup

        await setup(app, runtime)

    def sender(self, runtime: Runtime) -> TelegramSender | None:
        if not runtime.settings.telegram_bot_token:
            return None
        from bot.channels.telegram.sender import TelegramSender

        return TelegramSender.from_settings(runtime.settings)
