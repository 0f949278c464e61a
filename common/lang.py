"""Languages: platform language codes, and which of 简体 / 繁體 / English a text is written in.

The conversions here are for reading what people type (``to_simplified`` folds 繁體 onto 简体
so one set of keywords serves both); replies in 繁體 come from the catalogs (``common.i18n``).
"""

from __future__ import annotations

import re

import zhconv

__all__ = ["LANGUAGES", "detect_language", "has_han", "normalize_language", "to_simplified"]

LANGUAGES = ("zh-Hans", "zh-Hant", "en")

_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")


def normalize_language(code: str | None) -> str | None:
    """Platform codes (zh-hans, zh-CN, zh_TW, zh-HK, en-US) → zh-Hans / zh-Hant / en."""
    if not code:
        return None
    lowered = code.replace("_", "-").lower()
    if lowered.startswith("zh"):
        if any(tag in lowered for tag in ("hant", "-tw", "-hk", "-mo")):
            return "zh-Hant"
        return "zh-Hans"
    if lowered.startswith("en"):
        return "en"
    return None


def has_han(text: str) -> bool:
    """Whether the text holds at least one Chinese (Han) character."""
    return bool(text) and _HAN_RE.search(text) is not None


def to_simplified(text: str) -> str:
    """Convert traditional Chinese characters to simplified (other text is left unchanged)."""
    if not text or not _HAN_RE.search(text):
        return text
    return zhconv.convert(text, "zh-hans")


def detect_language(text: str) -> str | None:
    """Return ``"zh-Hant"``, ``"zh-Hans"`` or ``"en"``; ``None`` when the text does not tell.

    Chinese that reads the same in 简体 and 繁體 (「我要求助」, 「你好」) does not tell which
    script the writer uses, so it gives ``None`` too: the caller keeps the person's language.
    Only the Han characters are compared (zhconv also rewrites punctuation such as 「」), and
    character by character (``zh-hant``), not with regional wording (``zh-tw`` turns 信息 into 資訊).
    """
    if not text:
        return None
    han = "".join(_HAN_RE.findall(text))
    if han:
        if zhconv.convert(han, "zh-hans") != han:
            return "zh-Hant"
        if zhconv.convert(han, "zh-hant") != han:
            return "zh-Hans"
        return None
    if _LATIN_RE.search(text):
        return "en"
    return None
