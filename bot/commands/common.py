"""Helpers every CLI command module shares (so none of them imports ``bot.cli``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

import typer

from bot.texts import bilingual
from common.i18n import _

if TYPE_CHECKING:  # pydantic-settings is imported by the commands that read the settings, not by --help
    from bot.config import Settings


def load_settings() -> Settings:
    from bot.config import Settings

    try:
        return Settings()
    except Exception as exc:  # a readable line instead of a pydantic traceback
        label = bilingual(_("配置错误"))
        typer.echo(f"{label}: {exc}", err=True)
        raise typer.Exit(2) from exc


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# loggers that print SQL parameter values (what people typed, names, phones) at DEBUG
PARAMETER_LOGGERS = ("aiosqlite",)


def setup_logging(level: str | int, fmt: str = LOG_FORMAT) -> None:
    """The process's logging; even at DEBUG no logger prints SQL parameters (the engine hides them
    from its errors with ``hide_parameters``; aiosqlite logs every call's arguments at DEBUG)."""
    logging.basicConfig(level=level, format=fmt)
    for name in PARAMETER_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))


def fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


AT_HELP = "Pretend the clock reads this local time (YYYY-MM-DD HH:MM, in TIMEZONE) and runs on from it."


def clock_at(at: str | None, timezone: str) -> Callable[[], datetime]:
    """``--at "2026-12-20 17:30"``: a clock that starts at that local time and runs on from it (to try
    a month of dialogs in minutes); no ``--at``: the real clock."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from models import utcnow

    if not at:
        return utcnow
    try:
        start = datetime.fromisoformat(at.strip())
    except ValueError:
        fail("--at looks like 2026-12-20 17:30")
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(timezone))
    offset = start.astimezone(UTC) - utcnow()
    return lambda: utcnow() + offset
