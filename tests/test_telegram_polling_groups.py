"""Telegram by long polling (getUpdates from the fake Bot API), groups, announcements, and the link CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.channels.telegram import channel as telegram
from bot.cli import app as cli_app
from bot.runtime import upgrade_schema
from models import Signup
from models.db import create_engine, create_session_factory
from tests.conversation import TelegramConversation
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegramAPI, message_update
from tests.helpers import add_activity, make_coordinator, register
from tests.telegram_harness import TelegramHarness, buttons, texts

ALICE, BOB, COORD = 5001, 5002, 9000
GROUP = -100123


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


async def test_polling_conversation_registers_and_joins(api: FakeTelegramAPI, core, sessions, db_url,  # noqa: ANN001
                                                        clock) -> None:  # noqa: ANN001
    org = await make_coordinator(sessions, channel="telegram", user=str(COORD), org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2))
    async with TelegramHarness(api, core, sessions, db_url, webhook=False) as tg:
        assert "注册成功" in await register(TelegramConversation(tg, ALICE), "王小丽", start="/register")
        joined = await tg.press(ALICE, f"join:{activity.id}")
        assert "报名成功" in texts(joined)
        # the webhook was removed before polling (the two exclude each other) and the menus were set
        assert api.calls_to("deleteWebhook") and len(api.calls_to("setMyCommands")) == 3
        assert not api.calls_to("setWebhook")
    # shutdown stopped polling: nothing is left running against the fake
    calls = len(api.calls)
    await asyncio.sleep(0.2)
    assert len(api.calls) == calls
    async with sessions() as session:
        assert len(list(await session.exec(select(Signup)))) == 1


async def test_polling_goes_on_after_a_failed_get_updates(api: FakeTelegramAPI, core, sessions, db_url,  # noqa: ANN001
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram, "POLL_RETRY", 0.05)
    api.fail("getUpdates", status=502, description="Bad Gateway", times=2)
    async with TelegramHarness(api, core, sessions, db_url, webhook=False) as tg:
        assert "志愿助手" in texts(await tg.say(ALICE, "/help"))
        # an update the channel cannot read is skipped (and confirmed), the next one is answered
        api.queue_update({"update_id": tg.next_update_id(), "message": {"chat": {"id": "x"}}})
        assert "志愿助手" in texts(await tg.say(ALICE, "/help"))


@pytest.fixture
async def tg(api, core, sessions, db_url) -> AsyncIterator[TelegramHarness]:  # noqa: ANN001
    async with TelegramHarness(api, core, sessions, db_url, webhook=True) as harness:
        yield harness


async def test_in_a_group_only_commands_mentions_and_replies_to_the_bot_get_answers(
        tg: TelegramHarness, api: FakeTelegramAPI) -> None:
    in_group = {"chat_id": GROUP, "chat_type": "supergroup"}
    assert await tg.say(ALICE, "大家好，明天一起去敬老院吧", **in_group) == []
    assert await tg.say(ALICE, "/help@someone_else_bot", **in_group) == []
    assert "志愿助手" in texts(await tg.say(ALICE, f"/help@{BOT_USERNAME}", **in_group))
    assert "志愿助手" in texts(await tg.say(ALICE, "/help", **in_group))
    mention = f"@{BOT_USERNAME} 帮助"
    sent = await tg.say(ALICE, mention, entities=[{"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}],
                        **in_group)
    assert "志愿助手" in texts(sent)
    assert {m["chat_id"] for m in api.sent()} == {GROUP}  # answered in the group, not privately


async def test_coordinator_announces_in_a_group_and_members_join_with_the_button(
        tg: TelegramHarness, api: FakeTelegramAPI, sessions, clock) -> None:  # noqa: ANN001
    org = await make_coordinator(sessions, channel="telegram", user=str(COORD), org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=3), title="重阳节敬老活动")
    assert "注册成功" in await register(TelegramConversation(tg, ALICE), "王小丽", start="/register")

    # a volunteer may not announce
    assert "只有该组织的协调员" in texts(await tg.say(ALICE, f"/announce {activity.id}", chat_id=GROUP))
    post = await tg.say(COORD, f"/announce {activity.id}", chat_id=GROUP)
    assert post[0]["chat_id"] == GROUP and "重阳节敬老活动" in post[0]["text"] and "剩余名额：10/10" in post[0]["text"]
    join_data = buttons(post)["报名"]
    assert join_data == f"join:{activity.id}"

    # Alice (has a private chat with the bot) presses 报名 under the group post: answered privately
    sent = await tg.press(ALICE, join_data, chat_id=GROUP)
    assert [m["chat_id"] for m in sent] == [ALICE] and "报名成功" in texts(sent)
    assert "私信" in api.calls_to("answerCallbackQuery")[-1].params["text"]

    # Bob never started the bot: Telegram refuses a private message, so the callback answer carries it
    api.block(BOB)
    assert await tg.press(BOB, join_data, chat_id=GROUP) == []
    answer = api.calls_to("answerCallbackQuery")[-1].params
    assert "实名注册" in answer["text"] and answer["show_alert"] is True
    async with sessions() as session:
        signups = list(await session.exec(select(Signup)))
    assert len(signups) == 1


async def test_announce_without_id_lists_what_the_coordinator_may_announce(
        tg: TelegramHarness, sessions, clock) -> None:  # noqa: ANN001
    org = await make_coordinator(sessions, channel="telegram", user=str(COORD), org="花家地社区")
    other = await make_coordinator(sessions, channel="telegram", user="9999", org="别的街道")
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=3), title="我们的活动")
    await add_activity(sessions, org_id=other, start=clock.now + timedelta(days=3), title="别人的活动")
    listing = await tg.say(COORD, "/announce")
    assert list(buttons(listing)) == ["我们的活动"]
    assert "找不到这个活动" in texts(await tg.say(COORD, "/announce 999"))


async def test_update_from_an_unknown_chat_type_with_only_a_sticker_gets_a_clear_answer(
        tg: TelegramHarness, api: FakeTelegramAPI) -> None:
    update = message_update(tg.next_update_id(), user_id=ALICE, text="x")
    del update["message"]["text"]
    update["message"]["sticker"] = {"file_id": "f", "file_unique_id": "u", "type": "regular", "width": 1,
                                    "height": 1, "is_animated": False, "is_video": False}
    await tg.deliver(update)
    assert "请发送文字消息" in api.sent_texts(ALICE)[-1]


def test_link_command_prints_the_deep_link_and_writes_a_qr_png(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"

    async def prepare() -> tuple[int, str]:
        engine = create_engine(url)
        try:
            await upgrade_schema(engine)
            sessions = create_session_factory(engine)
            org = await make_coordinator(sessions, channel="telegram", user="1", org="花家地社区")
            from datetime import UTC, datetime
            activity = await add_activity(sessions, org_id=org, start=datetime(2026, 3, 5, 1, tzinfo=UTC))
            assert activity.id is not None and activity.checkin_code
            return activity.id, activity.checkin_code
        finally:
            await engine.dispose()

    activity_id, code = asyncio.run(prepare())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@volunteer_test_bot")
    png = tmp_path / "checkin.png"
    runner = CliRunner()
    result = runner.invoke(cli_app, ["telegram", "link", "--activity", str(activity_id), "--action", "checkin",
                                     "--qr", str(png)])
    assert result.exit_code == 0, result.output
    assert f"https://t.me/volunteer_test_bot?start=checkin_{code}" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkout = runner.invoke(cli_app, ["telegram", "link", "--activity", str(activity_id), "--action", "checkout"])
    assert f"?start=checkout_{code}" in checkout.output
    missing = runner.invoke(cli_app, ["telegram", "link", "--activity", "999", "--action", "checkin"])
    assert missing.exit_code == 1 and "no activity #999" in missing.output
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    unset = runner.invoke(cli_app, ["telegram", "link", "--activity", str(activity_id), "--action", "checkin"])
    assert unset.exit_code == 2 and "TELEGRAM_BOT_USERNAME" in unset.output
