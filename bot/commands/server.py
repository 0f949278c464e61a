"""``volunteer-bot serve``, ``chat``, ``classify`` and ``db upgrade``."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.commands.common import AT_HELP, clock_at, fail, load_settings, setup_logging

db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT setting).")] = None,
    db_attempts: Annotated[int, typer.Option(help="Connection attempts while the database is unreachable.")] = 8,
    db_retry_delay: Annotated[float, typer.Option(help="Seconds before the 2nd attempt (doubled, ≤ 30 s).")] = 1.0,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes on the port (PostgreSQL only).")] = 1,
) -> None:
    """Run the web app (GET /healthz, GET /metrics; channel endpoints) until interrupted."""
    settings = load_settings()
    setup_logging(settings.log_level)
    if workers > 1:
        from bot.workers import refusal, run_workers

        if (reason := refusal(settings.database_url, workers)) is not None:
            fail(reason)
        raise typer.Exit(run_workers(host=host or settings.host, port=port or settings.port, workers=workers,
                                     log_level=settings.log_level))
    from bot.runtime import SchemaNotReady
    from bot.serve import DatabaseUnavailable, run_server

    try:
        asyncio.run(run_server(settings, host=host or settings.host, port=port or settings.port,
                               db_attempts=db_attempts, db_retry_delay=db_retry_delay))
    except KeyboardInterrupt:
        pass
    except (DatabaseUnavailable, SchemaNotReady) as exc:
        fail(str(exc))


def chat(
    user: Annotated[str, typer.Option(help="Who you are on the console channel.")] = "console",
    lang: Annotated[str | None, typer.Option(help="zh-Hans, zh-Hant or en (default: guessed).")] = None,
    at: Annotated[str | None, typer.Option(help=AT_HELP)] = None,
) -> None:
    """Talk to the assistant in the terminal (interactive, or lines from a pipe)."""
    from bot.channels.console import ConsoleChannel
    from bot.runtime import Runtime

    settings = load_settings()
    setup_logging(logging.WARNING)
    clock = clock_at(at, settings.timezone)

    async def main() -> None:
        runtime = await Runtime.start(settings)
        runtime.core.clock = clock
        try:
            await ConsoleChannel(runtime.core, user=user, language=lang).run(sys.stdin)
        finally:
            await runtime.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C ends the chat like Ctrl-D, without a traceback
        typer.echo("")



def classify(
    text: Annotated[str | None, typer.Argument(help="A message to classify.")] = None,
    jsonl: Annotated[Path | None, typer.Option("--jsonl", help="File of lines {\"text\": ...}.")] = None,
) -> None:
    """Print {"text", "intent", "category", "confidence", "language"} as JSON, one object per input."""
    from handlers.nlu import classify as classify_text

    if (text is None) == (jsonl is None):
        fail("give either TEXT or --jsonl FILE")
    if text is not None:
        texts = [text]
    else:
        assert jsonl is not None
        texts = []
        for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                texts.append(str(item["text"]))
            except (ValueError, KeyError, TypeError):
                fail(f"{jsonl}:{number}: expected a JSON object with a \"text\" field")
    for item in texts:
        result = classify_text(item)
        typer.echo(json.dumps({"text": item, "intent": result.intent, "category": result.category,
                               "confidence": result.confidence, "category_confidence": result.category_confidence,
                               "language": result.language}, ensure_ascii=False))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration (SQLite or PostgreSQL, from DATABASE_URL)."""
    from bot.runtime import upgrade_schema
    from models.db import create_engine

    settings = load_settings()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()

    asyncio.run(main())
    typer.echo("schema is up to date")


