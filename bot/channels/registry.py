"""The channels ``serve``, the scheduler and the CLI know about: one line per channel.

Each entry is a class built from the settings (``bot.channels.base.Channel``); nothing here is state.
Entries live in each channel's light ``plugin`` module: the heavy adapter (aiogram, wechatpy) is
imported when the channel is mounted or its sender is built, never just because it is listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.channels.console import ConsolePlugin
from bot.channels.telegram.plugin import TelegramPlugin
from bot.channels.wechat.plugin import WeChatPlugin

if TYPE_CHECKING:  # type-only: listing the channels (the CLI's help) must not load the engine
    from bot.channels.base import Channel
    from bot.config import Settings
    from bot.runtime import Runtime
    from bot.sender import ChannelSender

CHANNELS: tuple[type[Channel], ...] = (
    ConsolePlugin,
    TelegramPlugin,
    WeChatPlugin,
)


def channel_names() -> tuple[str, ...]:
    return tuple(channel.name for channel in CHANNELS)


def all_channels(settings: Settings) -> list[Channel]:
    return [channel(settings) for channel in CHANNELS]


def enabled_channels(settings: Settings) -> list[Channel]:
    """The channels ``serve`` mounts (their settings switch them on, e.g. a token is set)."""
    return [channel for channel in all_channels(settings) if channel.enabled]


def push_senders(runtime: Runtime) -> list[ChannelSender]:
    """The outbox sender of every channel that can push and whose API is configured. A sender does not
    need the channel's inbound side (WeChat sends with app id + secret even without WECHAT_TOKEN)."""
    senders: list[ChannelSender] = []
    for channel in all_channels(runtime.settings):
        sender = channel.sender(runtime) if channel.can_push else None
        if sender is not None:
            senders.append(sender)
    return senders
