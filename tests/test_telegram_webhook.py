"""Telegram end to end through the real webhook endpoint: aiohttp app on loopback, real aiogram
Dispatcher, the core on a real database, and a local fake Bot API receiving the bot's calls."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.app import create_app
from bot.channels.telegram import channel as telegram
from bot.config import Settings
from bot.runtime import Runtime
from models import HourRecord, Identity, Signup
from models.db import create_engine
from tests.conversation import TelegramConversation
from tests.fakes.telegram_api import FakeTelegramAPI, callback_update, location_update, message_update
from tests.helpers import add_activity, make_coordinator, person_of, register
from tests.telegram_harness import SECRET, TelegramHarness, buttons, texts

ALICE = 5001


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def tg(api, core, sessions, db_url) -> AsyncIterator[TelegramHarness]:  # noqa: ANN001
    async with TelegramHarness(api, core, sessions, db_url, webhook=True) as harness:
        yield harness


async def test_wrong_or_missing_secret_token_is_401_and_reaches_nobody(tg: TelegramHarness,
                                                                        api: FakeTelegramAPI) -> None:
    update = message_update(1, user_id=ALICE, text="/help")
    assert (await tg.post(update, secret="wrong")).status == 401
    assert (await tg.post(update, secret=None)).status == 401
    assert api.sent() == []
    assert tg.channel.updates.finished == 0


async def test_start_sets_webhook_with_secret_and_command_menus(tg: TelegramHarness, api: FakeTelegramAPI) -> None:
    await api.wait_for("setWebhook")
    assert api.webhook is not None
    assert api.webhook["url"] == "https://bot.example.org/telegram"
    assert api.webhook["secret_token"] == "s3cret-Token_for-tests"
    assert {"message", "callback_query"} <= set(api.webhook["allowed_updates"])
    await api.wait_for("setMyCommands", count=3)
    zh = {c["command"]: c["description"] for c in api.commands["zh"]}
    en = {c["command"]: c["description"] for c in api.commands["en"]}
    assert zh["register"] == "志愿者实名注册" and en["register"] == "Register as a volunteer"
    assert api.commands[""] == api.commands["zh"]  # the default menu is 简体


async def test_registration_join_with_keyboard_hours_and_deep_link_checkin(
        tg: TelegramHarness, api: FakeTelegramAPI, sessions, clock) -> None:  # noqa: ANN001
    org = await make_coordinator(sessions, channel="telegram", user="9000", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2), hours=3)

    welcome = await tg.say(ALICE, "/start")
    assert "志愿助手" in texts(welcome)
    assert buttons(welcome)["志愿者注册"] == "reg"
    assert "注册成功" in await register(TelegramConversation(tg, ALICE), "王小丽", start="/register")
    identity_user = await person_of(sessions, "telegram", str(ALICE))
    assert identity_user.name == "王小丽" and identity_user.status == "active"

    # browse and join by pressing the inline buttons the bot sent
    listing = await tg.say(ALICE, "/activities")
    assert "社区敬老院探访" in texts(listing)
    details = await tg.press(ALICE, buttons(listing)["社区敬老院探访"])
    assert "名额：0/10" in texts(details)
    joined = await tg.press(ALICE, buttons(details)["报名参加"])
    assert "报名成功" in texts(joined)
    answered = api.calls_to("answerCallbackQuery")
    assert len({c.params["callback_query_id"] for c in answered}) == 2  # every press is answered

    hours = texts(await tg.say(ALICE, "我的时长"))
    assert "累计志愿服务时长：0 小时" in hours

    # at the venue: open the check-in deep link (t.me/<bot>?start=checkin_<code> sends "/start checkin_<code>")
    clock.now = activity.start_at
    assert "签到成功" in texts(await tg.say(ALICE, f"/start checkin_{activity.checkin_code}"))
    clock.now = activity.end_at
    assert "签退成功，本次记录服务时长 3 小时" in texts(await tg.say(ALICE, f"/start checkout_{activity.checkin_code}"))
    assert "累计志愿服务时长：3 小时" in texts(await tg.say(ALICE, "/hours"))
    async with sessions() as session:
        records = list(await session.exec(select(HourRecord)))
    assert [(r.hours, r.source) for r in records] == [(3.0, "checkin")]


async def test_redelivered_update_has_one_effect(tg: TelegramHarness, api: FakeTelegramAPI, sessions,  # noqa: ANN001
                                                 clock) -> None:  # noqa: ANN001
    org = await make_coordinator(sessions, channel="telegram", user="9000", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2))
    await register(TelegramConversation(tg, ALICE), "王小丽", start="/register")
    update = message_update(tg.next_update_id(), user_id=ALICE, text=f"/join {activity.id}")
    await tg.deliver(update)
    first = api.sent_texts(ALICE)
    assert "报名成功" in first[-1]
    for _ in range(3):  # Telegram redelivers when it did not see our 200 in time
        await tg.deliver(update)
    assert api.sent_texts(ALICE) == first  # one effect, and nothing sent again
    press = callback_update(tg.next_update_id(), user_id=ALICE, data="help")
    await tg.deliver(press)
    after_press = api.sent_texts(ALICE)
    await tg.deliver(press)
    assert api.sent_texts(ALICE) == after_press and len(after_press) > len(first)
    assert len(api.calls_to("answerCallbackQuery")) == 1
    async with sessions() as session:
        signups = list(await session.exec(select(Signup)))
    assert len(signups) == 1


async def test_malformed_bodies_and_headers_are_4xx_with_one_log_line(
        tg: TelegramHarness, api: FakeTelegramAPI, caplog: pytest.LogCaptureFixture) -> None:
    assert tg.client is not None
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    bad_bodies = [b"{not json", b"", b"[1, 2]", b'"update"', b'{"update_id": "x"}', b"\xff\xfe{",
                  b"[" * 5000 + b"]" * 5000, b'{"update_id": 1' + b', "a": [' * 3000 + b"]" * 3000 + b"}",
                  b'{"update_id": 123456789012345678901234567890}',
                  b'{"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": {"id": 1e400, "type": "private"}}}']
    for body in bad_bodies:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = await tg.client.post(telegram.WEBHOOK_PATH, data=body, headers=headers)
        assert response.status == 400, (body[:40], response.status)
        mine = [r for r in caplog.records if r.name == "bot.channels.telegram.webhook"]
        assert len(mine) == 1 and mine[0].exc_info is None, [r.getMessage() for r in caplog.records]
    # a header that is not ASCII (raw bytes on the wire) is an authentication failure, not a crash
    for secret in ("wrong-\u00e9", SECRET + "\u00e9", "\u4e2d\u6587"):
        response = await tg.client.post(telegram.WEBHOOK_PATH, data=b"{}", headers={
            "X-Telegram-Bot-Api-Secret-Token": secret.encode("utf-8").decode("latin-1")})
        assert response.status == 401
    response = await tg.client.post(telegram.WEBHOOK_PATH, data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                                    headers=headers)
    assert response.status == 413
    assert api.sent() == [] and tg.channel.updates.finished == 0
    assert "我是志愿助手" in texts(await tg.say(ALICE, "/help"))  # and the endpoint still works


@pytest.mark.parametrize(("language_code", "expected", "unexpected"), [
    ("zh-hans", "注册成为志愿者", "註冊"),
    ("zh-cn", "注册成为志愿者", "註冊"),
    ("zh-tw", "我是志願助手", "注册"),
    ("zh-hk", "我是志願助手", "注册"),
    ("en", "register as a volunteer", "注册"),
    ("ru", "注册成为志愿者", "register as a volunteer"),  # unknown → 简体
])
async def test_language_code_picks_simplified_traditional_or_english(
        tg: TelegramHarness, language_code: str, expected: str, unexpected: str) -> None:
    reply = texts(await tg.say(ALICE, "/help", language_code=language_code))
    assert expected in reply and unexpected not in reply


async def test_shared_location_lists_nearby_activities_by_distance(tg: TelegramHarness, api: FakeTelegramAPI,
                                                                   sessions, clock) -> None:  # noqa: ANN001
    org = await make_coordinator(sessions, channel="telegram", user="9000", org="望京街道")
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), title="远处的活动",
                       lat=40.10, lon=116.60)
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2), title="近处的活动",
                       lat=39.991, lon=116.471)
    await tg.deliver(location_update(tg.next_update_id(), user_id=ALICE, latitude=39.99, longitude=116.47))
    [reply] = api.sent(ALICE)
    assert reply["text"].index("近处的活动") < reply["text"].index("远处的活动") and "km" in reply["text"]
    assert list(buttons([reply])) == ["近处的活动", "远处的活动"]


async def test_a_long_reply_is_split_under_4096_with_the_keyboard_on_the_last_piece(
        tg: TelegramHarness, api: FakeTelegramAPI) -> None:
    # the core caps typed text at 2000 characters and answers why; make its reply long with a long roster
    sent = await tg.say(ALICE, "字" * 2100)
    assert "太长" in texts(sent)
    from bot.channels.telegram.render import render_reply
    from handlers.messages import Choice, Reply
    pieces = render_reply(Reply(text="\n".join(["一行志愿活动说明"] * 1000), choices=[Choice("下一页", "acts:2")]))
    assert len(pieces) == 3 and all(len(p.text) <= 4096 for p in pieces)
    assert [p.keyboard is not None for p in pieces] == [False, False, True]


async def test_reply_waits_out_a_429_and_still_arrives(tg: TelegramHarness, api: FakeTelegramAPI) -> None:
    api.fail("sendMessage", status=429, retry_after=1)
    sent = await tg.say(ALICE, "/help")
    assert "志愿助手" in texts(sent)
    assert api.flood_violations == 0


async def test_blocking_the_bot_marks_the_identity_inactive(tg: TelegramHarness, sessions) -> None:  # noqa: ANN001
    await tg.say(ALICE, "/start")
    await tg.deliver({"update_id": tg.next_update_id(), "my_chat_member": {
        "chat": {"id": ALICE, "type": "private", "first_name": "小王"},
        "from": {"id": ALICE, "is_bot": False, "first_name": "小王"}, "date": 1,
        "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "b"}},
        "new_chat_member": {"status": "kicked", "until_date": 0,
                            "user": {"id": 1, "is_bot": True, "first_name": "b"}},
    }})
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == str(ALICE)))).one()
    assert identity.active is False


async def test_without_a_token_telegram_is_off(db_url: str, sessions, core, caplog) -> None:  # noqa: ANN001
    settings = Settings(_env_file=None, database_url=db_url, telegram_bot_token="")
    runtime = Runtime(settings=settings, db=create_engine(db_url), sessions=sessions, core=core)
    with caplog.at_level(logging.INFO, logger="bot.channels.telegram"):
        app = await create_app(runtime, channels=[telegram.setup])
    assert "Telegram is off" in caplog.text
    assert telegram.TELEGRAM_KEY not in app
    assert all(r.resource is None or r.resource.canonical != "/telegram" for r in app.router.routes())
    await runtime.db.dispose()


async def test_an_update_of_a_kind_the_channel_does_not_handle_is_acknowledged_and_dropped(
        tg: TelegramHarness, api: FakeTelegramAPI) -> None:
    # (setWebhook's allowed_updates leaves them out; a forged or future one is not an error)
    await tg.deliver({"update_id": tg.next_update_id(), "edited_message": {"message_id": 1, "text": "改了"}})
    await tg.deliver({"update_id": tg.next_update_id(), "my_chat_member": {
        "chat": {"id": ALICE, "type": "private"}, "from": {"id": ALICE, "is_bot": False, "first_name": "小王"},
        "new_chat_member": {"status": "member"}}})
    assert api.sent() == [] and tg.channel.updates.finished == 2


async def test_each_press_is_answered_in_its_senders_language(tg: TelegramHarness, api: FakeTelegramAPI) -> None:
    group = {"chat_id": -100123, "chat_type": "supergroup"}
    english = await tg.press(ALICE, "help", language_code="en", **group)
    assert [m["chat_id"] for m in english] == [ALICE] and "register as a volunteer" in texts(english)
    assert api.calls_to("answerCallbackQuery")[-1].params["text"] == "I've replied in a private chat."
    simplified = await tg.press(ALICE, "help", language_code="zh-hans", **group)
    assert "注册成为志愿者" in texts(simplified)
    assert api.calls_to("answerCallbackQuery")[-1].params["text"] == "已私信回复你。"
