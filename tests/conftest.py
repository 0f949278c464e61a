"""Shared fixtures: a real SQLite file and (when a server answers) a real PostgreSQL database.

Every database test runs on both backends. PostgreSQL comes from ``TEST_POSTGRES_URL``
(default: the local server, database ``test``); a throw-away database is created for the run
and dropped at the end. Where no server answers, the PostgreSQL variants skip with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import models  # noqa: F401
from bot.channels.console import ConsoleChannel
from bot.runtime import upgrade_schema
from handlers.context import CoreOptions
from handlers.engine import Engine
from models.db import SessionFactory, create_engine, create_session_factory

if TYPE_CHECKING:
    from tests.fakes.wechat_api import FakeWeChatAPI
    from tests.wechat_harness import WeChatHarness

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"  # copies of shared data files the tests need
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TEST_KEY = "test-encryption-key-0123456789"


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def _pg_available(url: str) -> str | None:
    import asyncpg

    parsed = make_url(url)
    try:
        conn = await asyncpg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database,
            password=parsed.password, timeout=3,
        )
    except Exception as exc:
        return f"PostgreSQL not reachable at {parsed.host}:{parsed.port}: {exc.__class__.__name__}: {exc}"
    await conn.close()
    return None


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 database=parsed.database, password=parsed.password, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    base = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    reason = asyncio.run(_pg_available(base))
    if reason:
        if os.environ.get("TEST_REQUIRE_POSTGRES"):  # CI: a missing server is a failure, not a skip
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"vb_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the run's PostgreSQL database emptied."""
    if request.param == "sqlite":
        path = tmp_path / "volunteer.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


# the sequences of the tables' own id columns (serial: 'a', identity: 'i'), which TRUNCATE … RESTART IDENTITY restarts
OWNED_SEQUENCES = """
SELECT DISTINCT seq.oid::regclass::text FROM pg_class seq
JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = seq.oid AND dep.deptype IN ('a', 'i')
JOIN pg_class owner ON owner.oid = dep.refobjid
WHERE seq.relkind = 'S' AND owner.relname = ANY($1::text[])
"""


async def _truncate(url: str) -> None:
    """Every table emptied and its id sequence restarted, as ``TRUNCATE … RESTART IDENTITY`` would: by DELETE,
    children first, in one transaction. A test leaves a few rows; TRUNCATE makes new files for each of the
    tables and their indexes and took about a second per test on a busy machine, DELETE a tenth of that."""
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 database=parsed.database, password=parsed.password, timeout=5)
    try:
        names = [table.name for table in SQLModel.metadata.sorted_tables]
        sequences = [row[0] for row in await conn.fetch(OWNED_SEQUENCES, names)]
        # no trigger, and every foreign key is NO ACTION (checked at each statement's end): children first is enough
        await conn.execute("".join(f'DELETE FROM "{name}";\n' for name in reversed(names))
                           + "".join(f"ALTER SEQUENCE {sequence} RESTART;\n" for sequence in sequences))
    finally:
        await conn.close()


@pytest.fixture
def clock() -> Clock:
    # a Sunday morning in Beijing (02:00 UTC = 10:00 Asia/Shanghai)
    return Clock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))


@pytest.fixture
def options() -> CoreOptions:
    return CoreOptions(encryption_key=TEST_KEY, admins=frozenset({"console:root"}), page_size=3)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(db_url)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
def core(sessions: SessionFactory, options: CoreOptions, clock: Clock) -> Engine:
    return Engine(sessions, options, clock=clock)


@pytest.fixture
def console(core: Engine):  # noqa: ANN201 - returns a factory
    """console("alice") → a ConsoleChannel for that user, sharing the core."""

    def make(user: str, language: str | None = None) -> ConsoleChannel:
        return ConsoleChannel(core, user=user, language=language)

    return make


# ---- one conversation API for every channel (tests/conversation.py) ----------------------------
@pytest.fixture(params=["console", "wechat", "telegram"])
def any_channel(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def conversation_factory(any_channel: str, core: Engine, sessions: SessionFactory,
                               db_url: str) -> AsyncIterator[Callable[[str], object]]:
    """make("alice") → a ``Conversation`` for that user on ``any_channel`` (console, WeChat, Telegram)."""
    from tests.conversation import open_conversations

    async with open_conversations(any_channel, core, sessions, db_url) as make:
        yield make


# ---- the WeChat endpoint on loopback, against the fake WeChat API ---------------------------------------
# (imported here, not at the top: the harness imports this module's test key)
@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatAPI]:
    from tests.fakes.wechat_api import FakeWeChatAPI
    from tests.wechat_harness import VECTOR_APP_ID

    async with FakeWeChatAPI(app_id=VECTOR_APP_ID) as fake:
        yield fake


@pytest.fixture
async def wx(core: Engine, sessions: SessionFactory, api: FakeWeChatAPI) -> AsyncIterator[WeChatHarness]:
    from tests.wechat_harness import WeChatHarness

    async with WeChatHarness(core, sessions, api) as harness:
        yield harness


@pytest.fixture
async def wx_safe(core: Engine, sessions: SessionFactory, api: FakeWeChatAPI) -> AsyncIterator[WeChatHarness]:
    from tests.wechat_harness import WeChatHarness

    async with WeChatHarness(core, sessions, api, safe=True) as harness:
        yield harness
