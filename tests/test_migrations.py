"""Alembic owns the schema: one line of migrations, and the migrated database is what the models say."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlmodel import SQLModel

import models  # noqa: F401 - registers every table on SQLModel.metadata
from bot.runtime import alembic_config
from models.db import create_engine


def test_the_migrations_have_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://")).get_heads()
    assert len(heads) == 1, f"several migration heads (re-chain down_revision): {heads}"


def _differences(connection: Connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return compare_metadata(context, SQLModel.metadata)


async def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
