"""One test API for every channel: a ``Conversation`` is one user talking to the bot.

    conv = make("alice")                 # from the ``conversation_factory`` fixture
    await conv.send("注册")              # → the reply texts of that message (list[str])
    await conv.press("确认提交")          # press a button of the last reply, by label or by value
    conv.last, conv.replies, conv.buttons, conv.history

The same scenario then runs on

* console  — ``ConsoleChannel`` on the core; a button is a numbered line, pressing it types the number;
* wechat   — signed XML posted to the real ``/wechat`` endpoint (``WeChatHarness``); the passive reply
  is one text, its numbered lines are the buttons, pressing one types the number;
* telegram — updates posted to the real webhook (``TelegramHarness`` + fake Bot API); a reply is one or
  more sendMessage calls, buttons are the inline keyboard, pressing one is a callback_query with the
  button's callback_data.

``buttons`` maps each label to what pressing it sends on that channel: the number typed on console and
WeChat, the callback_data on Telegram. ``press`` takes a label or such a value.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bot.channels.console import ConsoleChannel
from handlers.engine import Engine
from models.db import SessionFactory

CHANNELS = ("console", "wechat", "telegram")


@dataclass
class Exchange:
    """One thing the user did (a text, or ``[button]`` for a press) and the reply texts it got."""

    sent: str
    replies: list[str]
    buttons: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Conversation(Protocol):
    channel: str  # "console", "wechat" or "telegram" (the Identity.channel of this user)
    user: str  # the user's id on that channel (Identity.external_id)

    async def send(self, text: str) -> list[str]:
        """Send one text message; return the reply texts it caused."""
        ...

    async def press(self, button: str) -> list[str]:
        """Press a button of the last reply, given its label or its value (see ``buttons``)."""
        ...

    @property
    def replies(self) -> list[str]:
        """Every reply text so far, in order."""
        ...

    @property
    def last(self) -> list[str]:
        """The reply texts of the last message or press."""
        ...

    @property
    def buttons(self) -> dict[str, str]:
        """label → value of the last reply's buttons (what ``press`` sends)."""
        ...

    @property
    def history(self) -> list[Exchange]:
        """Every exchange so far: what was sent and what came back."""
        ...


def joined(replies: list[str]) -> str:
    """Reply texts as one string (for ``in`` checks)."""
    return "\n\n".join(replies)


class _Recorded:
    channel: str
    user: str

    def __init__(self) -> None:
        self.history: list[Exchange] = []

    @property
    def replies(self) -> list[str]:
        return [text for exchange in self.history for text in exchange.replies]

    @property
    def last(self) -> list[str]:
        return self.history[-1].replies if self.history else []

    @property
    def buttons(self) -> dict[str, str]:
        return dict(self.history[-1].buttons) if self.history else {}

    def _button_value(self, button: str) -> str:
        buttons = self.buttons
        if button in buttons:
            return buttons[button]
        if button in buttons.values():
            return button
        raise AssertionError(f"no button {button!r} in the last reply on {self.channel}; buttons: {buttons}; "
                             f"last reply: {self.last}")

    def _record(self, sent: str, replies: list[str], buttons: dict[str, str]) -> list[str]:
        self.history.append(Exchange(sent, replies, buttons))
        return replies

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.channel}:{self.user}>"


_NUMBERED = re.compile(r"^(\d+)\. (.+)$")


def numbered_choices(text: str) -> dict[str, str]:
    """label → number of the last block of numbered lines "1. …", "2. …" (how text channels show choices)."""
    blocks: list[dict[str, str]] = []
    for line in text.split("\n"):
        match = _NUMBERED.match(line)
        if match and match.group(1) == "1":
            blocks.append({match.group(2): "1"})
        elif match and blocks and int(match.group(1)) == len(blocks[-1]) + 1:
            blocks[-1][match.group(2)] = match.group(1)
    return blocks[-1] if blocks else {}


class ConsoleConversation(_Recorded):
    """The console channel: each reply rendered as the terminal shows it."""

    channel = "console"

    def __init__(self, console: ConsoleChannel) -> None:
        super().__init__()
        self.console = console
        self.user = console.user

    async def _type(self, sent: str, line: str) -> list[str]:
        replies = await self.console.core.handle(self.console.to_inbound(line))
        texts = [ConsoleChannel.render([reply]) for reply in replies]
        # the engine numbers the choices of the last reply that has any
        choices = next((r.choices for r in reversed(replies) if r.choices), [])
        return self._record(sent, texts, {c.label: str(i) for i, c in enumerate(choices, 1)})

    async def send(self, text: str) -> list[str]:
        return await self._type(text, text)

    async def press(self, button: str) -> list[str]:
        return await self._type(f"[{button}]", self._button_value(button))


class WeChatConversation(_Recorded):
    """One openid posting to the real /wechat endpoint; the passive reply is the answer."""

    channel = "wechat"

    def __init__(self, harness: Any, openid: str) -> None:  # harness: tests.wechat_harness.WeChatHarness
        super().__init__()
        self.harness = harness
        self.user = openid

    async def _type(self, sent: str, text: str) -> list[str]:
        content = await self.harness.say(self.user, text)
        return self._record(sent, [content] if content else [], numbered_choices(content))

    async def send(self, text: str) -> list[str]:
        return await self._type(text, text)

    async def press(self, button: str) -> list[str]:
        return await self._type(f"[{button}]", self._button_value(button))


class TelegramConversation(_Recorded):
    """One private chat through the real webhook; replies are the sendMessage calls the update caused."""

    channel = "telegram"

    def __init__(self, harness: Any, user_id: int) -> None:  # harness: tests.telegram_harness.TelegramHarness
        super().__init__()
        self.harness = harness
        self.user_id = user_id
        self.user = str(user_id)

    def _record_sent(self, sent: str, messages: list[dict[str, Any]]) -> list[str]:
        from tests.telegram_harness import buttons

        keyboards = [buttons([m]) for m in messages]
        last_keyboard = next((k for k in reversed(keyboards) if k), {})
        return self._record(sent, [str(m.get("text", "")) for m in messages], last_keyboard)

    async def send(self, text: str) -> list[str]:
        return self._record_sent(text, await self.harness.say(self.user_id, text))

    async def press(self, button: str) -> list[str]:
        data = self._button_value(button)
        return self._record_sent(f"[{button}]", await self.harness.press(self.user_id, data))


def as_conversation(conv: Conversation | ConsoleChannel) -> Conversation:
    """A console channel object (what the ``console`` fixture makes) becomes a conversation."""
    return ConsoleConversation(conv) if isinstance(conv, ConsoleChannel) else conv


ConversationFactory = Callable[[str], Conversation]


@asynccontextmanager
async def open_conversations(channel: str, core: Engine, sessions: SessionFactory,
                             db_url: str) -> AsyncIterator[ConversationFactory]:
    """Start what ``channel`` needs (nothing, or the app with a fake platform API) and yield
    ``make(user) → Conversation``. Telegram users get numeric ids (7001, 7002, …), one per name."""
    if channel == "console":
        yield lambda user: ConsoleConversation(ConsoleChannel(core, user=user))
    elif channel == "wechat":
        from tests.fakes.wechat_api import FakeWeChatAPI
        from tests.wechat_harness import WeChatHarness

        async with FakeWeChatAPI() as api, WeChatHarness(core, sessions, api) as wx:
            yield lambda user: WeChatConversation(wx, f"o_{user}")
    elif channel == "telegram":
        from tests.fakes.telegram_api import FakeTelegramAPI
        from tests.telegram_harness import TelegramHarness

        ids: dict[str, int] = {}
        numbers = itertools.count(7001)

        def make(user: str) -> Conversation:
            if user not in ids:
                ids[user] = next(numbers)
            return TelegramConversation(tg, ids[user])

        async with FakeTelegramAPI() as api, TelegramHarness(api, core, sessions, db_url, webhook=True) as tg:
            yield make
    else:
        raise ValueError(f"unknown channel {channel!r}; one of {CHANNELS}")
