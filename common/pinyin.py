"""Toneless pinyin of Chinese names, from a small table (``data/pinyin.json``, the GB2312 characters),
so a name typed in pinyin finds its organization: "Huajiadi" → 花家地社区."""

from __future__ import annotations

import re
from functools import cache

from common.lang import to_simplified
from common.resources import load_json

__all__ = ["letters", "pinyin", "pinyin_matches"]

_NOT_LETTERS = re.compile(r"[^a-z]+")
# what follows a place's own name, in English, in pinyin or in characters: compared without it
_PLACE_WORDS = re.compile(r"\b(?:community|estate|compound|village|neighbou?rhood|residential area|street|shequ|xiaoqu)\b",
                          re.IGNORECASE)
_PLACE_SUFFIX = re.compile(r"(?:社区|小区|村|街道)$")


@cache
def _table() -> dict[str, str]:
    return {char: reading for reading, chars in load_json("pinyin.json").items() for char in chars}


def pinyin(text: str) -> str:
    """The toneless pinyin of the Chinese characters in ``text``, run together (others kept, lower-cased)."""
    table = _table()
    return "".join(table.get(char, char) for char in to_simplified(text)).lower()


def letters(text: str) -> str:
    """Only the Latin letters, lower-cased: "Hua Jia Di" → "huajiadi"."""
    return _NOT_LETTERS.sub("", text.lower())


def pinyin_matches(typed: str, name: str, *, minimum: int = 5) -> bool:
    """Whether Latin ``typed`` (spaces and case ignored) spells the start or all of Chinese ``name``
    (or ``name`` spells the start of it: "huajiadishequ" ↔ 花家地)."""
    if any("\u4e00" <= ch <= "\u9fff" for ch in typed):
        return False
    wanted, spelled = letters(_PLACE_WORDS.sub("", typed)), letters(pinyin(_PLACE_SUFFIX.sub("", to_simplified(name))))
    if len(wanted) < minimum or len(spelled) < minimum:
        return False
    return spelled.startswith(wanted) or wanted.startswith(spelled)
