"""The typed words of the reminder settings, broadcasts and observance calendar (data/reminder_words.json)."""

from __future__ import annotations

from typing import Any

from handlers.words import load_words


def _all() -> dict[str, Any]:
    return load_words("reminder_words")


def words(feature: str) -> dict[str, Any]:
    """One feature's section: lists of typed words (简体, lower case) and the patterns it reads input with."""
    return _all()[feature]
