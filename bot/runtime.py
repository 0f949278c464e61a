"""The running pieces every entry point shares: settings, database, the core engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admission import TurnSlots
from bot.config import Settings
from bot.metrics import Metrics
from handlers.engine import Engine
from models.db import SessionFactory, create_engine, create_session_factory, is_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class SchemaNotReady(RuntimeError):
    pass


# Alembic is imported where it is used: a process that does not migrate or check the schema
# (most CLI commands) does not load it.
def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(connection: Connection, url: str) -> None:
    from alembic import command

    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    # "heads": feature branches of the migration graph may be applied side by side
    command.upgrade(cfg, "heads")


def _is_current(connection: Connection, url: str) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    return set(MigrationContext.configure(connection).get_current_heads()) == heads


async def upgrade_schema(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, url)


async def ensure_schema(engine: AsyncEngine) -> None:
    """SQLite creates its schema on first run; PostgreSQL is migrated with ``volunteer-bot db upgrade``."""
    url = engine.url.render_as_string(hide_password=False)
    if is_sqlite(url):
        await upgrade_schema(engine)
        return
    async with engine.connect() as conn:
        current = await conn.run_sync(_is_current, url)
    if not current:
        raise SchemaNotReady("the database schema is not up to date: run `volunteer-bot db upgrade` first")


@dataclass
class Runtime:
    settings: Settings
    db: AsyncEngine
    sessions: SessionFactory
    core: Engine
    metrics: Metrics = field(default_factory=Metrics)  # this runtime's own registry (GET /metrics)
    # every channel's turns in this process (WeChat, Telegram): one pool of CORE_CONCURRENCY slots
    turn_slots: TurnSlots | None = None

    def __post_init__(self) -> None:
        if self.turn_slots is None:
            self.turn_slots = TurnSlots(self.settings.core_concurrency)

    @classmethod
    async def start(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        db = create_engine(settings.database_url)
        if migrate:
            await ensure_schema(db)
        sessions = create_session_factory(db)
        return cls(settings=settings, db=db, sessions=sessions, core=Engine(sessions, settings.core_options()))

    async def close(self) -> None:
        await self.db.dispose()
