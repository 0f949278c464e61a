"""Typed words and input patterns are data (``handlers/data/*.json``), read here once per process.

Each feature keeps its words in its own file (``<feature>_words.json``): the 简体, lower-case words
that run a command when typed alone, and the patterns it reads input with. Keeping them out of the
code keeps every Chinese literal in the source inside a gettext call.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


@cache
def load_words(name: str) -> dict[str, Any]:
    """``handlers/data/<name>.json`` (parsed once; treat the result as read-only)."""
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
