"""Telegram updates (the Bot API's JSON) → the core's neutral ``Inbound``: messages, shared locations,
button presses, and a private chat's "user blocked the bot".

Only the fields the channel uses are read, each checked as it is read: a missing id, a field of the
wrong type, an id beyond 64 bits or a coordinate that is not finite raise ``Malformed`` (the webhook
answers 400); whatever else an update carries is never looked at. No model of the whole update is
built: aiogram's pydantic ``Update`` (every nested type, private attributes, the bot context) and its
Dispatcher were about a third of the channel's CPU per update, for the dozen fields used here
(``bench/bench_telegram.py --servers adapter``).

    update = parse_update(json.loads(body))     # Update(update_id, event); raises Malformed
    update.event                                 # Message | ButtonPress | MemberChange | None (a kind not handled)
    message_to_inbound(update.event, update.update_id, bot_username="volunteer_bot")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from handlers.messages import Inbound, Location

CHANNEL = "telegram"
GROUP_TYPES = frozenset({"group", "supergroup"})
# the update kinds the channel handles: setWebhook's and getUpdates' allowed_updates (Telegram sends no other)
UPDATE_TYPES = ("message", "callback_query", "my_chat_member")
# Telegram's ids and dates fit in a signed 64-bit integer (ids use at most 52 bits); anything wider
# cannot reach a BIGINT column and is not from Telegram
INT64 = 2**63


class Malformed(ValueError):
    """Not a Telegram update the channel can read (the message says which part)."""


# ---- reading checked fields -----------------------------------------------------------------------------
def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where} is not an object")
    return value


def _int(container: dict[str, Any], key: str) -> int:
    value = container.get(key)
    # bool is an int subclass: JSON true is not an id
    if type(value) is not int or not -INT64 <= value < INT64:
        raise Malformed(f"{key} is not a 64-bit integer")
    return value


def _text(container: dict[str, Any], key: str) -> str:
    value = container.get(key)
    if not isinstance(value, str):
        raise Malformed(f"{key} is not a string")
    return value


def _optional_text(container: dict[str, Any], key: str) -> str | None:
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"{key} is not a string")
    return value


def _coordinate(container: dict[str, Any], key: str) -> float:
    value = container.get(key)
    if type(value) is float and math.isfinite(value):
        return value
    if type(value) is int and -INT64 <= value < INT64:  # a wider one would overflow float()
        return float(value)
    raise Malformed(f"{key} is not a finite number")


# ---- what the channel uses of an update ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sender:
    id: int
    language_code: str | None
    full_name: str


@dataclass(frozen=True, slots=True)
class Message:
    chat_id: int
    chat_type: str
    sender: Sender | None  # None: posted on behalf of a chat (a channel post forwarded into a group)
    text: str | None  # the text, else the caption
    location: Location | None = None
    # read in group chats only, where they decide whether the message is for the bot:
    mentions: frozenset[str] = frozenset()  # the @names of its mention entities, lower-cased
    reply_to_user: int | None = None  # the author of the message this one answers

    @property
    def is_group(self) -> bool:
        return self.chat_type in GROUP_TYPES


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A callback query: an inline-keyboard button was pressed."""
    id: str
    sender: Sender
    data: str
    chat_id: int | None  # the chat of the message carrying the button (None: unknown, e.g. inline mode)
    chat_type: str | None

    @property
    def is_group(self) -> bool:
        return self.chat_type in GROUP_TYPES


@dataclass(frozen=True, slots=True)
class MemberChange:
    """my_chat_member: the bot's own membership in a chat changed (``kicked`` in a private chat: blocked)."""
    user_id: int
    chat_type: str
    status: str


Event = Message | ButtonPress | MemberChange


@dataclass(frozen=True, slots=True)
class Update:
    update_id: int
    event: Event | None  # None: a kind of update the channel does not handle

    @property
    def key(self) -> str:
        """The dedupe key: a redelivered update has the same one (``Inbound.message_id``)."""
        return f"u{self.update_id}"


def _sender(value: Any) -> Sender:
    user = _object(value, "from")
    first = _optional_text(user, "first_name") or ""
    last = _optional_text(user, "last_name")
    return Sender(id=_int(user, "id"), language_code=_optional_text(user, "language_code"),
                  full_name=f"{first} {last}" if last else first)


def _utf16_slice(text: str, offset: int, length: int) -> str:
    """Telegram's entity offsets count UTF-16 code units (an emoji before a mention counts twice)."""
    encoded = text.encode("utf-16-le", "surrogatepass")
    return encoded[offset * 2:(offset + length) * 2].decode("utf-16-le", "replace")


def _mentions(message: dict[str, Any], text: str) -> frozenset[str]:
    entities = message.get("entities")
    if entities is None:
        entities = message.get("caption_entities")
    if entities is None:
        return frozenset()
    if not isinstance(entities, list):
        raise Malformed("entities is not a list")
    found = set()
    for entity in entities:
        entity = _object(entity, "entity")
        if _text(entity, "type") == "mention":
            found.add(_utf16_slice(text, _int(entity, "offset"), _int(entity, "length")).lower())
    return frozenset(found)


def _message(value: Any) -> Message:
    message = _object(value, "message")
    chat = _object(message.get("chat"), "chat")
    chat_id, chat_type = _int(chat, "id"), _text(chat, "type")
    sender = _sender(message["from"]) if message.get("from") is not None else None
    text = _optional_text(message, "text")
    if text is None:
        text = _optional_text(message, "caption")
    location = None
    if message.get("location") is not None:
        place = _object(message["location"], "location")
        venue = message.get("venue")
        label = _optional_text(_object(venue, "venue"), "title") if venue is not None else None
        location = Location(latitude=_coordinate(place, "latitude"), longitude=_coordinate(place, "longitude"),
                            label=label)
    if chat_type not in GROUP_TYPES:
        return Message(chat_id, chat_type, sender, text, location)
    reply_to_user = None
    replied = message.get("reply_to_message")
    if replied is not None:
        author = _object(replied, "reply_to_message").get("from")
        reply_to_user = _int(_object(author, "from"), "id") if author is not None else None
    return Message(chat_id, chat_type, sender, text, location, _mentions(message, text or ""), reply_to_user)


def _button_press(value: Any) -> ButtonPress:
    callback = _object(value, "callback_query")
    chat_id = chat_type = None
    if callback.get("message") is not None:  # the message under which the button was
        chat = _object(_object(callback["message"], "message").get("chat"), "chat")
        chat_id, chat_type = _int(chat, "id"), _text(chat, "type")
    return ButtonPress(id=_text(callback, "id"), sender=_sender(callback.get("from")),
                       data=_optional_text(callback, "data") or "", chat_id=chat_id, chat_type=chat_type)


def _member_change(value: Any) -> MemberChange:
    change = _object(value, "my_chat_member")
    return MemberChange(user_id=_int(_object(change.get("from"), "from"), "id"),
                        chat_type=_text(_object(change.get("chat"), "chat"), "type"),
                        status=_text(_object(change.get("new_chat_member"), "new_chat_member"), "status"))


def parse_update(raw: Any) -> Update:
    """An update from its JSON (already decoded); ``Malformed`` when a field the channel reads is wrong."""
    update = _object(raw, "the update")
    update_id = _int(update, "update_id")
    event: Event | None = None
    if update.get("message") is not None:
        event = _message(update["message"])
    elif update.get("callback_query") is not None:
        event = _button_press(update["callback_query"])
    elif update.get("my_chat_member") is not None:
        event = _member_change(update["my_chat_member"])
    return Update(update_id, event)


# ---- → Inbound ---------------------------------------------------------------------------------------------
def _strip_bot_name(text: str, username: str | None) -> str:
    """'/start@volunteer_bot act_5' → '/start act_5'; '@volunteer_bot 活动' → '活动'."""
    if not username:
        return text
    handle = f"@{username}"
    head, sep, rest = text.partition(" ")
    if head.startswith("/") and head.lower().endswith(handle.lower()):
        return head[: -len(handle)] + sep + rest
    if text.lower().startswith(handle.lower()):
        return text[len(handle):].strip()
    return text


def message_to_inbound(message: Message, update_id: int, *, bot_username: str | None = None) -> Inbound:
    sender = message.sender
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "user_id": str(sender.id if sender else message.chat_id),
        "message_id": f"u{update_id}",
        "language": sender.language_code if sender else None,
        "display_name": sender.full_name if sender else None,
        "conversation_id": str(message.chat_id),
        "is_group": message.is_group,
    }
    if message.location is not None:
        return Inbound(event="location", location=message.location, **common)
    text = message.text
    return Inbound(text=_strip_bot_name(text, bot_username) if text else None, **common)


def button_press_to_inbound(press: ButtonPress, update_id: int) -> Inbound:
    return Inbound(
        channel=CHANNEL, user_id=str(press.sender.id), payload=press.data, message_id=f"u{update_id}",
        language=press.sender.language_code, display_name=press.sender.full_name,
        conversation_id=str(press.chat_id) if press.chat_id is not None else str(press.sender.id),
        is_group=press.is_group,
    )
