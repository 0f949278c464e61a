"""Which turns commit without waiting for the WAL's flush (PostgreSQL): models.hotpath.TurnConnection.commit.

A turn that wrote only its own bookkeeping (claim, stored replies, dialog state, last contact) commits
with ``synchronous_commit = off``; a feature's write through the session keeps the commit durable.
Observed through asyncpg's query logger on every connection the engine checks out: the queries the
database really received, the transaction control included.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from handlers.engine import Engine
from handlers.messages import Inbound
from models import Identity, Person
from models.db import SessionFactory
from models.hotpath import _LIGHT_COMMIT
from tests.conftest import Clock
from tests.helpers import adult_id, make_coordinator

_ids = itertools.count(1)


@contextmanager
def received(sessions: SessionFactory) -> Iterator[list[str]]:
    """The queries PostgreSQL receives on the engine's connections while the block runs."""
    queries: list[str] = []
    engine = sessions.kw["bind"].sync_engine

    def log(record: Any) -> None:
        queries.append(record.query)

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(log)
        hooked.append(driver)

    hooked: list[Any] = []
    event.listen(engine, "checkout", on_checkout)
    try:
        yield queries
    finally:
        event.remove(engine, "checkout", on_checkout)
        for driver in hooked:
            driver.remove_query_logger(log)


async def say(core: Engine, clock: Clock, user: str, text: str) -> None:
    clock.advance(minutes=1)
    await core.handle(Inbound(channel="console", user_id=user, text=text, message_id=f"lc{next(_ids)}"))


@pytest.fixture
def pg_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("synchronous_commit is PostgreSQL's (SQLite runs WAL with synchronous=NORMAL for every commit)")


async def test_a_read_only_turn_commits_without_waiting_for_the_disk(pg_only: None, core: Engine,
                                                                     sessions: SessionFactory, clock: Clock) -> None:
    with received(sessions) as queries:
        await say(core, clock, "u1", "帮助")  # first contact: a person is made, the commit stays durable
    assert queries
    assert _LIGHT_COMMIT not in queries
    with received(sessions) as queries:
        await say(core, clock, "u1", "帮助")
    assert queries, "the turn's queries were observed"
    assert _LIGHT_COMMIT in queries
    with received(sessions) as queries:
        await say(core, clock, "u1", "我的时长")  # a read through the session's connection stays light
    assert _LIGHT_COMMIT in queries


async def test_a_feature_write_keeps_the_commit_durable(pg_only: None, core: Engine, sessions: SessionFactory,
                                                        clock: Clock) -> None:
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区服务站")
    steps = ("注册", "张三", adult_id(), "13800138000", "1,3", "花家地社区")
    for text in steps:
        await say(core, clock, "vol", text)
    with received(sessions) as queries:
        await say(core, clock, "vol", "1")  # confirm: the person is saved
    assert queries
    assert _LIGHT_COMMIT not in queries
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == "vol"))).one()
        person = await session.get(Person, identity.person_id)
        assert person is not None and person.status == "active"
