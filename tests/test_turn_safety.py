"""A turn never crashes: typed arguments are bounded before the database sees them, and an unexpected
exception gets an apology and the menu, one log line with a turn id, and a rolled-back, ended dialog."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import func, select

from bot.commands.common import setup_logging
from handlers.engine import Engine
from handlers.messages import Inbound
from handlers.turn import Command, Turn
from models import DialogState, Identity, InboundSeen, LinkCode
from models.db import create_engine
from services.linking import issue_link_code
from tests.conversation import Conversation, joined
from tests.helpers import add_activity, make_coordinator, register

HUGE = "9" * 24
SORRY = "出了点问题"
EXPIRED = "过期"


async def press_raw(conv: Conversation, value: str) -> list[str]:
    """A payload the bot never offered (an old button, a forged callback, a custom-menu key)."""
    if conv.channel == "telegram":
        return conv._record_sent(f"[{value}]", await conv.harness.press(conv.user_id, value))  # type: ignore[attr-defined]
    if conv.channel == "wechat":
        answer = await conv.harness.event(conv.user, "CLICK", value)  # type: ignore[attr-defined]
        return conv._record(f"[{value}]", [answer.content or ""], {})  # type: ignore[attr-defined]
    replies = await conv.console.core.handle(Inbound(channel="console", user_id=conv.user, payload=value))  # type: ignore[attr-defined]
    return conv._record(f"[{value}]", [r.text for r in replies], {})  # type: ignore[attr-defined]


@pytest.mark.parametrize("typed", ["/act ²", f"/act {HUGE}", f"/start act_{HUGE}", "/join -1", f"/cancelreq {HUGE}",
                                   f"/take {HUGE}", "/roster ³", f"/reqv {HUGE}", f"/rate {HUGE}"])
async def test_typed_arguments_out_of_range_are_expired_on_every_channel(conversation_factory, typed: str) -> None:
    conv = conversation_factory("ann")
    reply = joined(await conv.send(typed))
    assert EXPIRED in reply and SORRY not in reply
    # nothing is left open: the next message is a message, not an answer to a stuck question
    assert "志愿助手" in joined(await conv.send("帮助"))


@pytest.mark.parametrize("value", [f"acts:{HUGE}", "join:-1", "join:²", f"act:{HUGE}", "act:1:2", f"start:act_{HUGE}",
                                   f"cancelreq:{HUGE}", "a:²", f"roster:{HUGE}", "nosuchcommand:1"])
async def test_pressed_payloads_out_of_range_get_an_answer_on_every_channel(conversation_factory, value: str) -> None:
    conv = conversation_factory("bob")
    reply = joined(await press_raw(conv, value))
    assert reply.strip() and SORRY not in reply
    assert "志愿助手" in joined(await conv.send("帮助"))


@pytest.mark.parametrize("typed", ["²", "１", HUGE, "٣", "0", "-1"])
async def test_a_number_that_is_no_choice_never_picks_one(conversation_factory, typed: str) -> None:
    conv = conversation_factory("cat")
    await conv.send("帮助")
    reply = joined(await conv.send(typed))
    assert reply.strip() and SORRY not in reply
    if typed == "１":  # a full-width 1 is a 1: the first menu choice (register)
        assert "姓名" in reply


async def test_control_characters_and_broken_surrogates_are_stored_cleanly(core: Engine, sessions) -> None:
    replies = await core.handle(Inbound(channel="console", user_id="dan", text="注册"))
    assert "姓名" in replies[-1].text
    replies = await core.handle(Inbound(channel="console", user_id="dan", text="李\x00雷\udcff"))
    assert SORRY not in replies[-1].text


# ---- the safety net -----------------------------------------------------------------------------
def _failing_command(core: Engine, name: str, *, message: str) -> None:
    """Replace command ``name`` by one that writes (a dialog step, a link code), then fails."""

    async def boom(turn: Turn, _arg: object) -> None:
        turn.ask("reg", "name", "…")
        await issue_link_code(turn.session, person_id=turn.person.id, now=turn.now)
        await turn.session.flush()
        raise RuntimeError(message)

    core.commands[name] = Command(boom)


def _engine_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "handlers.engine" and r.levelno >= logging.ERROR]


async def test_an_unexpected_failure_apologises_logs_one_line_and_rolls_the_turn_back(
        core: Engine, sessions, caplog: pytest.LogCaptureFixture) -> None:
    user = "u-13800138000"
    _failing_command(core, "hrs", message="boom for 13800138000")
    with caplog.at_level(logging.INFO, logger="handlers.engine"):
        replies = await core.handle(Inbound(channel="console", user_id=user, text="我的时长 13800138000"))
    assert SORRY in replies[0].text and "志愿助手" in replies[-1].text
    turn_id = re.search(r"编号 ([0-9a-f]{8})", replies[0].text)[1]  # type: ignore[index]
    [line] = _engine_errors(caplog)
    message = line.getMessage()
    assert turn_id in message and "command hrs" in message and "RuntimeError" in message
    assert "13800138000" not in message and line.exc_info is None  # no text, no user id, no traceback at INFO
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(LinkCode))).one() == 0
        identity = (await session.exec(select(Identity).where(Identity.external_id == user))).one()
        state = await session.get(DialogState, identity.id)
    assert state is not None and state.flow is None and state.step is None
    # the menu's choices are remembered: "1" picks its first (register)
    assert "姓名" in (await core.handle(Inbound(channel="console", user_id=user, text="1")))[-1].text


async def test_the_traceback_goes_to_debug_under_the_turn_id(core: Engine, caplog: pytest.LogCaptureFixture) -> None:
    _failing_command(core, "hrs", message="boom")
    with caplog.at_level(logging.DEBUG, logger="handlers.engine"):
        replies = await core.handle(Inbound(channel="console", user_id="eve", text="我的时长"))
    turn_id = re.search(r"编号 ([0-9a-f]{8})", replies[0].text)[1]  # type: ignore[index]
    [debug] = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert turn_id in debug.getMessage() and debug.exc_info[0] is RuntimeError  # type: ignore[index]


async def test_a_failing_dialog_step_ends_the_dialog(core: Engine, sessions, caplog: pytest.LogCaptureFixture) -> None:
    await core.handle(Inbound(channel="console", user_id="fay", text="注册"))
    flow = core.flows["reg"]

    async def broken(turn: Turn, text: str) -> None:
        raise KeyError("draft")

    flow.handle = broken  # type: ignore[method-assign]
    try:
        replies = await core.handle(Inbound(channel="console", user_id="fay", text="李雷"))
    finally:
        del flow.handle
    assert SORRY in replies[0].text
    assert "flow reg.name" in _engine_errors(caplog)[0].getMessage()
    # no longer in the dialog: a name typed now is small talk, not the answer to a question
    assert "身份证号" not in joined([r.text for r in await core.handle(Inbound(channel="console", user_id="fay", text="李雷"))])


async def test_a_retry_of_a_failed_message_runs_again(core: Engine, sessions) -> None:
    calls = {"n": 0}
    original = core.commands["help"]

    async def flaky(turn: Turn, arg: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        await original.handler(turn, arg)

    core.commands["help"] = Command(flaky)
    first = await core.handle(Inbound(channel="test", user_id="gus", text="帮助", message_id="r-1"))
    assert SORRY in first[0].text  # the apology's menu runs "menu", not the failing "help"
    retry = await core.handle(Inbound(channel="test", user_id="gus", text="帮助", message_id="r-1"))
    assert SORRY not in retry[0].text and "志愿助手" in retry[-1].text and calls["n"] == 2
    again = await core.handle(Inbound(channel="test", user_id="gus", text="帮助", message_id="r-1"))
    assert again == retry and calls["n"] == 2  # now it has an answer: the dedupe row replays it
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(InboundSeen))).one() == 1


async def test_when_the_database_is_gone_the_apology_comes_alone(core: Engine, caplog: pytest.LogCaptureFixture) -> None:
    def gone(**_kw: object) -> object:
        raise ConnectionRefusedError("no database")

    core.sessions = gone  # type: ignore[assignment]
    # a turn's own statements run on a connection of core.database: a server nobody listens on
    core.database = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/gone")
    try:
        replies = await core.handle(Inbound(channel="console", user_id="hal", text="hello there friend", language="en"))
    finally:
        await core.database.dispose()
    assert len(replies) == 1 and "Sorry" in replies[0].text and replies[0].lang == "en"
    assert [r.getMessage().split(":")[-1].strip() for r in _engine_errors(caplog)] == ["ConnectionRefusedError"] * 2


async def test_sql_parameter_values_never_reach_the_log(core: Engine, sessions, clock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    secret = "110101199003071234"
    async with sessions() as session:
        session.add(InboundSeen(channel="x", message_key="k", created_at=clock.now))
        await session.commit()

    async def duplicate(turn: Turn, _arg: object) -> None:
        # a unique clash whose parameters carry a value that must not be logged
        turn.session.add(InboundSeen(channel="x", message_key="k", created_at=turn.now, reply=[{"text": secret}]))
        await turn.session.flush()

    core.commands["hrs"] = Command(duplicate)
    with caplog.at_level(logging.DEBUG, logger="handlers.engine"), caplog.at_level(logging.DEBUG, logger="sqlalchemy"):
        replies = await core.handle(Inbound(channel="console", user_id="ida", text="我的时长"))
    assert SORRY in replies[0].text
    [debug] = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    error = debug.exc_info[1]  # type: ignore[index]
    assert isinstance(error, DBAPIError) and "hidden due to hide_parameters" in str(error)
    assert secret not in caplog.text and secret not in str(error)


def test_debug_logging_never_prints_sql_parameters() -> None:
    aiosqlite = logging.getLogger("aiosqlite")
    before = aiosqlite.level
    try:
        setup_logging(logging.DEBUG)  # an operator's LOG_LEVEL=DEBUG
        assert not aiosqlite.isEnabledFor(logging.DEBUG)  # it prints every statement's arguments there
    finally:
        aiosqlite.setLevel(before)


async def test_a_volunteer_and_a_coordinator_with_open_dialogs_survive_odd_input(core: Engine, sessions, clock) -> None:
    from bot.channels.console import ConsoleChannel

    org = await make_coordinator(sessions, channel="console", user="boss", org="望京街道")
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1))
    await register(ConsoleChannel(core, user="vol"), "韩梅梅", serial=81)
    for user, opener in (("vol", "我要求助"), ("boss", "发布活动"), ("boss", "/bc")):
        await core.handle(Inbound(channel="console", user_id=user, text=opener))
        for odd in ("²", HUGE, "\x00", "a:²", f"a:{HUGE}", "1" * 3000):
            replies = await core.handle(Inbound(channel="console", user_id=user, text=odd))
            assert replies and SORRY not in joined([r.text for r in replies]), (user, opener, odd)
