"""Telegram update JSON → the channel's events → Inbound (bot/channels/telegram/convert.py), without a server:
the fields the channel reads are checked, the rest is never looked at."""

from __future__ import annotations

from typing import Any

import pytest

from bot.channels.telegram.channel import addressed_to_bot
from bot.channels.telegram.convert import (
    ButtonPress,
    Malformed,
    MemberChange,
    Message,
    button_press_to_inbound,
    message_to_inbound,
    parse_update,
)
from bot.channels.telegram.webhook import parse_body
from handlers.messages import Location
from tests.fakes.telegram_api import BOT_ID, BOT_USERNAME, callback_update, location_update, message_update

GROUP = -100123


def test_a_private_text_becomes_an_inbound_with_the_senders_language_and_name() -> None:
    raw = message_update(7, user_id=42, text="/start@volunteer_test_bot act_5", language_code="en")
    raw["message"]["from"]["last_name"] = "Wang"
    raw["message"]["sticker"] = {"anything": ["the channel", {"does not": "read"}]}  # never looked at
    update = parse_update(raw)
    assert update.update_id == 7 and update.key == "u7"
    message = update.event
    assert isinstance(message, Message) and not message.is_group
    inbound = message_to_inbound(message, update.update_id, bot_username=BOT_USERNAME)
    assert (inbound.channel, inbound.user_id, inbound.conversation_id, inbound.message_id) == ("telegram", "42",
                                                                                                "42", "u7")
    assert inbound.text == "/start act_5" and inbound.language == "en" and inbound.display_name == "小王 Wang"
    assert inbound.is_group is False and inbound.payload is None


def test_a_caption_stands_for_the_text_and_a_location_carries_its_venue() -> None:
    raw = message_update(8, user_id=42, text="x")
    raw["message"]["caption"] = raw["message"].pop("text")
    message = parse_update(raw).event
    assert isinstance(message, Message) and message.text == "x"
    raw = location_update(9, user_id=42, latitude=39.99, longitude=116)
    raw["message"]["venue"] = {"title": "幸福敬老院", "location": raw["message"]["location"]}
    message = parse_update(raw).event
    assert isinstance(message, Message)
    inbound = message_to_inbound(message, 9)
    assert inbound.event == "location" and inbound.location == Location(39.99, 116.0, "幸福敬老院")


def test_a_button_press_carries_its_data_and_its_chat() -> None:
    update = parse_update(callback_update(10, user_id=42, data="join:3", chat_id=GROUP, chat_type="supergroup",
                                          language_code="zh-hant"))
    press = update.event
    assert isinstance(press, ButtonPress) and press.is_group and press.id == "cb10"
    inbound = button_press_to_inbound(press, update.update_id)
    assert (inbound.payload, inbound.user_id, inbound.conversation_id, inbound.language) == (
        "join:3", "42", str(GROUP), "zh-hant")
    assert inbound.is_group and inbound.text is None
    # a press without data (a game button) or without its message: still a press, of the user's own chat
    raw = callback_update(11, user_id=42, data="x")
    del raw["callback_query"]["data"], raw["callback_query"]["message"]
    inbound = button_press_to_inbound(parse_update(raw).event, 11)  # type: ignore[arg-type]
    assert inbound.payload == "" and inbound.conversation_id == "42" and not inbound.is_group


def test_blocking_and_unknown_kinds() -> None:
    change = parse_update({"update_id": 12, "my_chat_member": {
        "chat": {"id": 42, "type": "private"}, "from": {"id": 42, "is_bot": False, "first_name": "a"},
        "new_chat_member": {"status": "kicked"}}}).event
    assert change == MemberChange(user_id=42, chat_type="private", status="kicked")
    assert parse_update({"update_id": 13, "edited_message": {"whatever": True}}).event is None


def _group_message(text: str, **extra: Any) -> Message:
    raw = message_update(14, user_id=42, text=text, chat_id=GROUP, chat_type="supergroup")
    raw["message"].update(extra)
    message = parse_update(raw).event
    assert isinstance(message, Message)
    return message


def test_in_groups_only_commands_mentions_and_replies_to_the_bot_are_addressed_to_it() -> None:
    def addressed(message: Message) -> bool:
        return addressed_to_bot(message, BOT_USERNAME, BOT_ID)

    assert addressed(_group_message("/help")) and addressed(_group_message(f"/help@{BOT_USERNAME.upper()}"))
    assert not addressed(_group_message("/help@another_bot")) and not addressed(_group_message("大家好"))
    # entity offsets count UTF-16 code units: an emoji before the mention counts twice
    text = f"😀 @{BOT_USERNAME} 活动"
    mention = {"type": "mention", "offset": 3, "length": len(BOT_USERNAME) + 1}
    assert addressed(_group_message(text, entities=[mention]))
    assert not addressed(_group_message(text, entities=[{**mention, "offset": 2}]))
    assert not addressed(_group_message("@someone 你好", entities=[{"type": "mention", "offset": 0, "length": 8}]))
    replying = _group_message("好的", reply_to_message={"message_id": 1, "from": {"id": BOT_ID, "is_bot": True}})
    assert addressed(replying)
    other = _group_message("好的", reply_to_message={"message_id": 1, "from": {"id": 77, "is_bot": False}})
    assert not addressed(other)
    # a private chat: everything, whatever it says
    assert addressed_to_bot(parse_update(message_update(15, user_id=42, text="你好")).event, None, BOT_ID)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [
    b"{not json", b"", b"[1, 2]", b"null", b'{"update_id": "x"}', b'{"update_id": true}', b'{"update_id": 1.5}',
    b'{"update_id": 9223372036854775808}',
    b'{"update_id": 1, "message": []}',
    b'{"update_id": 1, "message": {"chat": {"id": 1}}}',
    b'{"update_id": 1, "message": {"chat": {"id": "1", "type": "private"}}}',
    b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}, "text": 5}}',
    b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}, "from": {"id": 1e400}}}',
    b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}, "location": {"latitude": 1e400, '
    b'"longitude": 1}}}',
    b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}, "location": {"latitude": '
    + b"9" * 400 + b', "longitude": 1}}}',
    b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "group"}, "text": "a", "entities": {}}}',
    b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "group"}, "text": "a", "entities": [{"type": '
    b'"mention", "offset": "0", "length": 1}]}}',
    b'{"update_id": 1, "callback_query": {"id": "c", "data": "help"}}',
    b'{"update_id": 1, "callback_query": {"id": 5, "from": {"id": 1}}}',
    b'{"update_id": 1, "my_chat_member": {"chat": {"type": "private"}, "from": {"id": 1}}}',
])
def test_a_field_the_channel_reads_of_the_wrong_shape_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse_body(body)
