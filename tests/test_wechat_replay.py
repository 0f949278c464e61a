"""The replay guard's group commit: the signed (timestamp, nonce) pairs of concurrent callbacks are
written together, and each callback still gets its own answer (the same body again is let through
to the dedupe, another body under a seen pair is refused). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.channels.wechat.security import PURGE_EVERY, STORED_MEMORY_SECONDS, Rejected, ReplayGuard
from models import InboundSeen
from models.db import SessionFactory
from models.wechat import WeChatNonce
from services.wechat_replay import SignedCallback, body_digest, nonce_key, remember_nonces
from tests.wechat_harness import WeChatHarness, text_xml

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def callback(nonce: str, body: bytes, *, expires_at: datetime = NOW + timedelta(minutes=5)) -> SignedCallback:
    return SignedCallback(nonce_key("1764144000", nonce), body_digest(body), expires_at)


async def test_one_batch_stores_the_first_body_of_each_pair_and_reports_the_stored_one(
        sessions: SessionFactory) -> None:
    database = sessions.kw["bind"]
    async with database.connect() as connection:
        await remember_nonces(connection, callbacks=[callback("1", b"seen before")], now=NOW)
    batch = [callback("1", b"another body"), callback("2", b"new"), callback("2", b"new, other body"),
             callback("3", b"new too")]
    async with database.connect() as connection:
        stored = await remember_nonces(connection, callbacks=batch, now=NOW)
    assert stored == {batch[0].nonce_key: body_digest(b"seen before"), batch[1].nonce_key: body_digest(b"new"),
                      batch[3].nonce_key: body_digest(b"new too")}
    async with sessions() as session:
        assert len((await session.exec(select(WeChatNonce))).all()) == 3


async def test_a_purge_deletes_only_pairs_past_the_window(sessions: SessionFactory) -> None:
    database = sessions.kw["bind"]
    async with database.connect() as connection:
        await remember_nonces(connection, callbacks=[callback("old", b"x", expires_at=NOW - timedelta(seconds=1)),
                                                     callback("kept", b"y")], now=NOW)
    async with database.connect() as connection:
        await remember_nonces(connection, callbacks=[callback("new", b"z")], now=NOW, purge=True)
    async with sessions() as session:
        keys = set((await session.exec(select(WeChatNonce.nonce_key))).all())
    assert keys == {callback("kept", b"").nonce_key, callback("new", b"").nonce_key}


async def test_concurrent_checks_share_writes_and_each_gets_its_own_answer(sessions: SessionFactory) -> None:
    guard = ReplayGuard(sessions.kw["bind"], clock=lambda: 1764144000.0)
    query = {"timestamp": "1764144000"}
    outcomes = await asyncio.gather(
        *(guard.check({**query, "nonce": str(n)}, f"body {n}".encode()) for n in range(PURGE_EVERY + 6)),
        guard.check({**query, "nonce": "0"}, b"body 0"),  # a retry within the batch
        guard.check({**query, "nonce": "1"}, b"forged"),  # a replay with another body within the batch
        return_exceptions=True)
    assert outcomes[:-1] == [None] * (PURGE_EVERY + 7)
    assert isinstance(outcomes[-1], Rejected) and outcomes[-1].status == 403
    async with sessions() as session:
        assert len((await session.exec(select(WeChatNonce))).all()) == PURGE_EVERY + 6
    # a later batch sees them, and the purge on the way deleted none of them (all within the window)
    with_other_body = guard.check({**query, "nonce": "2"}, b"forged")
    again = guard.check({**query, "nonce": "3"}, b"body 3")
    outcomes = await asyncio.gather(with_other_body, again, return_exceptions=True)
    assert isinstance(outcomes[0], Rejected) and outcomes[1] is None


async def test_a_failed_write_fails_its_requests_and_the_next_write_works(sessions: SessionFactory) -> None:
    database = sessions.kw["bind"]
    failing = True

    class FlakyDatabase:
        def connect(self):  # noqa: ANN202
            if failing:
                raise ConnectionError("database gone")
            return database.connect()

    guard = ReplayGuard(FlakyDatabase(), clock=lambda: 1764144000.0)  # type: ignore[arg-type]
    query = {"timestamp": "1764144000"}
    outcomes = await asyncio.gather(*(guard.check({**query, "nonce": str(n)}, b"x") for n in range(3)),
                                    return_exceptions=True)
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    failing = False
    await guard.check({**query, "nonce": "0"}, b"x")


async def test_concurrent_posts_through_the_endpoint(wx: WeChatHarness) -> None:
    bodies = [text_xml(f"o_user{n}", "帮助") for n in range(6)]
    retried = bodies[0]
    query = wx.query(retried)
    answers = await asyncio.gather(*(wx.post(body) for body in bodies[1:]),
                                   wx.post(retried, raw=True, query=query),
                                   wx.post(retried, raw=True, query=query))  # WeChat's retry, at once
    assert [answer.status for answer in answers] == [200] * 7
    assert answers[5].content and answers[5].content == answers[6].content
    assert (await wx.post(text_xml("o_mallory", "取消"), raw=True, query=query)).status == 403
    async with wx.runtime.sessions() as session:
        assert len((await session.exec(select(InboundSeen))).all()) == 6


async def test_a_pair_stored_here_is_answered_from_memory_then_from_the_database(sessions: SessionFactory) -> None:
    database = sessions.kw["bind"]
    connects = 0
    now = 1764144000.0

    class CountingDatabase:
        def connect(self):  # noqa: ANN202
            nonlocal connects
            connects += 1
            return database.connect()

    guard = ReplayGuard(CountingDatabase(), clock=lambda: now)  # type: ignore[arg-type]
    query = {"timestamp": "1764144000", "nonce": "n1"}
    await guard.check(query, b"body")
    assert connects == 1
    await guard.check(query, b"body")  # WeChat's retry
    with pytest.raises(Rejected):
        await guard.check(query, b"forged")
    assert connects == 1  # both answered from memory
    now += STORED_MEMORY_SECONDS + 1  # forgotten here; the database still holds the pair
    with pytest.raises(Rejected):
        await guard.check(query, b"forged")
    assert connects == 2
    await guard.check(query, b"body")  # what the database answered is remembered again
    assert connects == 2


async def test_another_process_sees_the_pair_at_once(sessions: SessionFactory) -> None:
    """Two guards on one database stand for two worker processes: the second refuses another body
    under a pair the first accepted, with no delay (the write is done before the first one's check
    returns)."""
    first = ReplayGuard(sessions.kw["bind"], clock=lambda: 1764144000.0)
    second = ReplayGuard(sessions.kw["bind"], clock=lambda: 1764144000.0)
    query = {"timestamp": "1764144000", "nonce": "shared"}
    await first.check(query, b"genuine")
    with pytest.raises(Rejected):
        await second.check(query, b"forged")
    await second.check(query, b"genuine")  # a retry that reached the other process


async def test_a_request_that_goes_away_leaves_the_others_waiting_for_the_same_pair(
        sessions: SessionFactory) -> None:
    guard = ReplayGuard(sessions.kw["bind"], clock=lambda: 1764144000.0)
    query = {"timestamp": "1764144000", "nonce": "twice"}
    gone = asyncio.create_task(guard.check(query, b"body"))
    stays = asyncio.create_task(guard.check(query, b"body"))
    await asyncio.sleep(0)
    gone.cancel()
    await stays
    assert gone.cancelled()
    async with sessions() as session:
        assert len((await session.exec(select(WeChatNonce))).all()) == 1


async def test_a_driver_error_on_sqlite_is_raised_as_sqlalchemys(tmp_path) -> None:  # noqa: ANN001
    """The SQLite write runs outside SQLAlchemy (one trip on the driver's thread): its errors still
    arrive as SQLAlchemy's, as from every other statement (no table here: OperationalError)."""
    from sqlalchemy.exc import OperationalError

    from models.db import create_engine

    database = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        async with database.connect() as connection:
            with pytest.raises(OperationalError):
                await remember_nonces(connection, callbacks=[callback("1", b"x")], now=NOW)
    finally:
        await database.dispose()
