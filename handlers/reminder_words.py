"""The typed words of the reminder settings, broadcasts and observance calendar (data/reminder_words.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

WORDS_FILE = Path(__file__).resolve().parent / "data" / "reminder_words.json"


@cache
def _all() -> dict[str, Any]:
    return json.loads(WORDS_FILE.read_text(encoding="utf-8"))


def words(feature: str) -> dict[str, Any]:
    """One feature's section: lists of typed words (简体, lower case) and the patterns it reads input with."""
    return _all()[feature]
