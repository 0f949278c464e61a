"""Helpers every CLI command module shares (so none of them imports ``bot.cli``)."""

from __future__ import annotations

from typing import NoReturn

import typer

from bot.config import Settings
from bot.texts import bilingual
from common.i18n import _


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # a readable line instead of a pydantic traceback
        label = bilingual(_("配置错误"))
        typer.echo(f"{label}: {exc}", err=True)
        raise typer.Exit(2) from exc


def fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)
