"""Telegram updates → the core's neutral ``Inbound`` (messages, shared locations, button presses)."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message

from handlers.messages import Inbound, Location

CHANNEL = "telegram"
GROUP_TYPES = frozenset({"group", "supergroup"})


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
    user = message.from_user
    chat = message.chat
    common = {
        "channel": CHANNEL,
        "user_id": str(user.id if user else chat.id),
        "message_id": f"u{update_id}",
        "language": user.language_code if user else None,
        "display_name": user.full_name if user else None,
        "conversation_id": str(chat.id),
        "is_group": chat.type in GROUP_TYPES,
    }
    if message.location is not None:
        location = Location(latitude=message.location.latitude, longitude=message.location.longitude,
                            label=message.venue.title if message.venue else None)
        return Inbound(event="location", location=location, **common)
    text = message.text if message.text is not None else message.caption
    return Inbound(text=_strip_bot_name(text, bot_username) if text else None, **common)


def callback_to_inbound(callback: CallbackQuery, update_id: int) -> Inbound:
    chat = callback.message.chat if callback.message else None
    return Inbound(
        channel=CHANNEL, user_id=str(callback.from_user.id), payload=callback.data or "",
        message_id=f"u{update_id}", language=callback.from_user.language_code,
        display_name=callback.from_user.full_name,
        conversation_id=str(chat.id) if chat else str(callback.from_user.id),
        is_group=chat is not None and chat.type in GROUP_TYPES,
    )
