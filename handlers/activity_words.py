"""The typed words of the activity-side commands, kept as data in handlers/data/activities_words.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

WORDS_FILE = Path(__file__).parent / "data" / "activities_words.json"


@cache
def _all() -> dict:
    return json.loads(WORDS_FILE.read_text(encoding="utf-8"))


def list_of_names(names: list[str]) -> str:
    """Names in one line, separated by 、 as the existing replies show them (in every language)."""
    separator: str = _all()["list_separator"]  # type: ignore[assignment]
    return separator.join(names)


def words(feature: str, command: str) -> tuple[str, ...]:
    """The words that, typed alone (or with one word after them), run ``command`` of ``feature``."""
    return tuple(_all()[feature][command])
