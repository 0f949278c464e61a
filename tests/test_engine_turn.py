"""The turn's skeleton on the driver connection (models/hotpath.py): what the ORM used to guarantee.

A turn's own statements bypass the session; these check that the session a feature opens shares
their transaction, that a turn without a feature's session still persists what it changed, and that
a failed or cancelled turn leaves nothing behind (its claim included, and on SQLite no write lock).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from handlers.context import CoreOptions
from handlers.engine import Engine, default_routers
from handlers.messages import Inbound
from handlers.turn import FeatureRouter, Turn
from models import DialogState, Identity, InboundSeen, Person
from models.db import SessionFactory, create_engine
from services.people import grant_role
from tests.conftest import Clock
from tests.helpers import CountingFactory


def msg(text: str, *, user: str = "u1", message_id: str | None = None) -> Inbound:
    return Inbound(channel="test", user_id=user, text=text, message_id=message_id)


def probe_router(started: asyncio.Event) -> FeatureRouter:
    router = FeatureRouter("probe")

    @router.command("area", words=["改社区"])
    async def area(turn: Turn, _arg: str) -> None:  # changes the person without opening the session
        turn.person.area = "望京"
        turn.say("好")

    @router.command("boom", words=["出错"])
    async def boom(turn: Turn, _arg: str) -> None:  # fails with no session open: only the claim to undo
        turn.person.area = "不该留下"
        raise RuntimeError("boom")

    @router.command("hang", words=["卡住"])
    async def hang(turn: Turn, _arg: str) -> None:  # holds the write lock (SQLite) until cancelled
        turn.person.area = "不该留下"
        await turn.session.flush()
        started.set()
        await asyncio.Event().wait()

    return router


def engine(sessions: SessionFactory, options: CoreOptions, clock: Clock, started: asyncio.Event) -> Engine:
    return Engine(sessions, options, clock=clock, routers=[*default_routers(), probe_router(started)])


async def area_of(sessions: SessionFactory, user: str = "u1") -> str | None:
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == user))).one()
        person = await session.get(Person, identity.person_id)
        assert person is not None
        return person.area


async def test_a_roleless_volunteers_help_opens_no_session(sessions: SessionFactory, options: CoreOptions,
                                                           clock: Clock) -> None:
    core = engine(sessions, options, clock, asyncio.Event())
    counting = CountingFactory(sessions)
    core.sessions = counting  # type: ignore[assignment]
    # a first contact: the new person and identity are inserted on the driver too
    assert "志愿助手" in (await core.handle(msg("帮助", message_id="h-1")))[-1].text and counting.opened == 0
    replies = await core.handle(msg("帮助", message_id="h-2"))
    assert "志愿助手" in replies[-1].text and counting.opened == 0
    # a person holding a role has it read on the turn's connection, in its transaction: no session either
    async with sessions() as session:
        identity = (await session.exec(select(Identity))).one()
        await grant_role(session, person_id=identity.person_id, role="admin", organization_id=None)
        await session.commit()
    replies = await core.handle(msg("帮助", message_id="h-3"))
    assert "管理员" in replies[-1].text and counting.opened == 0


async def test_a_change_to_the_person_without_a_session_is_kept(sessions: SessionFactory, options: CoreOptions,
                                                                clock: Clock) -> None:
    core = engine(sessions, options, clock, asyncio.Event())
    await core.handle(msg("帮助", message_id="a-1"))
    assert (await core.handle(msg("改社区", message_id="a-2")))[-1].text == "好"
    assert await area_of(sessions) == "望京"


async def test_a_failed_turn_leaves_neither_its_writes_nor_its_claim(sessions: SessionFactory,
                                                                    options: CoreOptions, clock: Clock) -> None:
    core = engine(sessions, options, clock, asyncio.Event())
    await core.handle(msg("帮助", message_id="f-1"))
    replies = await core.handle(msg("出错", message_id="f-2"))
    assert "出了点问题" in replies[0].text
    assert await area_of(sessions) is None
    async with sessions() as session:
        assert await session.get(InboundSeen, ("test", "f-2")) is None
    # and the connection went back to the pool clean: the next turns write
    assert "志愿助手" in (await core.handle(msg("帮助", user="u2", message_id="f-3")))[-1].text


async def test_a_cancelled_turn_rolls_back_and_frees_the_writer(sessions: SessionFactory, options: CoreOptions,
                                                               clock: Clock) -> None:
    started = asyncio.Event()
    core = engine(sessions, options, clock, started)
    await core.handle(msg("帮助", message_id="c-1"))
    task = asyncio.create_task(core.handle(msg("卡住", message_id="c-2")))
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # another person's first contact writes (on SQLite it would wait for a leaked write lock)
    replies = await asyncio.wait_for(core.handle(msg("帮助", user="u2", message_id="c-3")), timeout=20)
    assert "志愿助手" in replies[-1].text
    assert await area_of(sessions) is None
    async with sessions() as session:
        assert await session.get(InboundSeen, ("test", "c-2")) is None


async def test_a_lost_postgresql_connection_fails_one_turn_only(sessions: SessionFactory, options: CoreOptions,
                                                                clock: Clock, db_url: str) -> None:
    """The driver's errors bypass SQLAlchemy: the turn's connection still invalidates the pool's
    connections on a disconnect, as SQLAlchemy would, so the next turn gets a new one."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server's connection")
    core = engine(sessions, options, clock, asyncio.Event())
    await core.handle(msg("帮助", message_id="d-1"))
    admin = create_engine(db_url)
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await admin.dispose()
    await core.handle(msg("帮助", message_id="d-2"))  # may fail (an apology): its connection was cut
    replies = await core.handle(msg("帮助", message_id="d-3"))
    assert "出了点问题" not in replies[0].text and "志愿助手" in replies[-1].text


async def people_and_identities(sessions: SessionFactory) -> tuple[int, int]:
    async with sessions() as session:
        people = (await session.exec(select(func.count()).select_from(Person))).one()
        identities = (await session.exec(select(func.count()).select_from(Identity))).one()
    return people, identities


async def test_a_first_contact_is_made_with_the_inbound_values(sessions: SessionFactory, options: CoreOptions,
                                                               clock: Clock) -> None:
    core = engine(sessions, options, clock, asyncio.Event())
    inbound = Inbound(channel="test", user_id="u1", text="help", message_id="n-1", display_name="小王",
                      language="en")
    await core.handle(inbound)
    async with sessions() as session:
        identity = (await session.exec(select(Identity))).one()
        person = await session.get(Person, identity.person_id)
        state = await session.get(DialogState, identity.id)
    assert (identity.channel, identity.external_id, identity.active) == ("test", "u1", True)
    assert (identity.display_name, identity.language) == ("小王", "en")
    assert identity.last_inbound_at == clock() and identity.created_at == clock()
    assert person is not None and person.status == "guest" and person.skills == "" and person.created_at == clock()
    assert state is not None and state.choices  # the menu's choices, for "2" to pick one


async def test_a_first_contact_that_unsubscribes_leaves_the_identity_inactive(
        sessions: SessionFactory, options: CoreOptions, clock: Clock) -> None:
    core = engine(sessions, options, clock, asyncio.Event())
    await core.handle(Inbound(channel="test", user_id="u1", event="unsubscribe", message_id="un-1"))
    async with sessions() as session:
        assert (await session.exec(select(Identity.active))).one() is False
    await core.handle(Inbound(channel="test", user_id="u1", event="subscribe", message_id="un-2"))
    async with sessions() as session:
        assert (await session.exec(select(Identity.active))).one() is True


async def test_concurrent_first_contacts_of_one_user_make_one_person(sessions: SessionFactory,
                                                                    options: CoreOptions, clock: Clock) -> None:
    core = engine(sessions, options, clock, asyncio.Event())
    results = await asyncio.gather(*(core.handle(msg("帮助", message_id=f"cc-{n}")) for n in range(4)))
    assert all("志愿助手" in replies[-1].text for replies in results)
    assert await people_and_identities(sessions) == (1, 1)



async def test_a_first_contact_that_loses_the_race_uses_the_winners_identity(
        sessions: SessionFactory, options: CoreOptions, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other first contact commits between this turn's speaker SELECT (no row) and its INSERTs: this
    turn's person is dropped and the winner's identity, person and dialog state are used."""
    import services.conversation as conversation

    core = engine(sessions, options, clock, asyncio.Event())
    original = conversation._first_contact
    raced = []

    async def racing(*args: Any, **kw: Any) -> Any:
        if not raced:
            raced.append(True)
            await core._turn(msg("注册"))  # the winner, in its own transaction (not a turn slot: this one holds it)
        return await original(*args, **kw)

    monkeypatch.setattr(conversation, "_first_contact", racing)
    replies = await core.handle(msg("张三"))  # no message id: on SQLite nothing holds the write lock
    assert raced and "身份证号" in replies[-1].text  # the winner's registration goes on
    assert await people_and_identities(sessions) == (1, 1)
