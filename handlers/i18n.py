"""Language codes and the 简体 / 繁體 / English choice of a text."""

from __future__ import annotations

import zhconv

LANGUAGES = ("zh-Hans", "zh-Hant", "en")


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


def localize(lang: str | None, zh: str, en: str) -> str:
    """Texts are written in 简体 and English; 繁體 is converted from the 简体 text."""
    if lang == "en":
        return en
    if lang == "zh-Hant":
        return zhconv.convert(zh, "zh-hant")
    return zh
