"""Data files shipped in ``common/data`` (package data, see pyproject.toml)."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

__all__ = ["load_json"]


def load_json(name: str) -> Any:
    """Parse ``common/data/<name>``; a fresh object on every call (callers cache what they keep)."""
    return json.loads(files("common").joinpath("data", name).read_text(encoding="utf-8"))
