"""Language codes and the 简体 / 繁體 / English choice of a text."""

from __future__ import annotations

import zhconv

from common.lang import normalize_language  # noqa: F401  (importers use handlers.i18n)

LANGUAGES = ("zh-Hans", "zh-Hant", "en")


# zhconv maps 复 to 複 everywhere; in our texts it is always 回复 (reply) → 回覆.
_TRADITIONAL_FIXES = (("回複", "回覆"), ("答複", "答覆"))


def to_traditional(text: str) -> str:
    # zh-tw uses the standard forms people read in Taiwan and Hong Kong (為, not 爲)
    converted = zhconv.convert(text, "zh-tw")
    for wrong, right in _TRADITIONAL_FIXES:
        converted = converted.replace(wrong, right)
    return converted


def localize(lang: str | None, zh: str, en: str) -> str:
    """Texts are written in 简体 and English; 繁體 is converted from the 简体 text."""
    if lang == "en":
        return en
    if lang == "zh-Hant":
        return to_traditional(zh)
    return zh
