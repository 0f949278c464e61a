"""The WeChat registry entry (``bot/channels/registry.py``).

Light on purpose: the endpoint (wechatpy, its crypto) is imported only when the channel is mounted,
the sender only when the API is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.wechat.sender import WeChatSender
    from bot.channels.wechat.settings import WeChatSettings
    from bot.config import Settings
    from bot.runtime import Runtime

# the same value as convert.CHANNEL (tests/test_lean_start.py): importing convert here would load
# the platform library
CHANNEL = "wechat"


class WeChatPlugin:
    name: ClassVar[str] = CHANNEL
    can_push: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings: WeChatSettings = settings

    @property
    def enabled(self) -> bool:
        return self.settings.wechat_enabled

    async def mount(self, app: web.Application, runtime: Runtime) -> None:
        from bot.channels.wechat.channel import setup

        await setup(app, runtime)

    def sender(self, runtime: Runtime) -> WeChatSender | None:
        if not runtime.settings.wechat_api_configured:
            return None
        from bot.channels.wechat.sender import wechat_sender

        return wechat_sender(runtime)
