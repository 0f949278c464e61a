"""The typed words of the activity-side commands, kept as data in handlers/data/activities_words.json."""

from __future__ import annotations

from handlers.words import load_words


def _all() -> dict:
    return load_words("activities_words")


def list_of_names(names: list[str]) -> str:
    """Names in one line, separated by 、 as the existing replies show them (in every language)."""
    separator: str = _all()["list_separator"]  # type: ignore[assignment]
    return separator.join(names)


def words(feature: str, command: str) -> tuple[str, ...]:
    """The words that, typed alone (or with one word after them), run ``command`` of ``feature``."""
    return tuple(_all()[feature][command])
