"""Parsing helpers for the Chinese text people type, used by handlers and services alike."""

from __future__ import annotations

__all__ = ["WEEKDAYS", "clean_text", "cn_number", "normalize_width"]

# Monday first, as date.weekday() counts: WEEKDAYS[d.weekday()] → 周一 … 周日
WEEKDAYS = "一二三四五六日"

_FULL_WIDTH = {
    **{code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)},  # ０-９
    **{code: code - 0xFEE0 for code in range(0xFF21, 0xFF3B)},  # Ａ-Ｚ
    **{code: code - 0xFEE0 for code in range(0xFF41, 0xFF5B)},  # ａ-ｚ
    0xFF0B: ord("+"), 0xFF0D: ord("-"), 0x3000: ord(" "),
}


def normalize_width(text: str) -> str:
    """Full-width digits and letters (１２３Ｘ) become ASCII; Chinese punctuation (，！？) is kept."""
    return text.translate(_FULL_WIDTH)


_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
           "八": 8, "九": 9}


def cn_number(token: str) -> int | None:
    """A whole number written with ASCII/full-width digits or Chinese numerals up to 99.

    '12', '１２', '三', '两', '十', '十一', '二十', '二十五' → int; None when it is not such a number.
    """
    token = normalize_width(token).strip()
    if token.isascii() and token.isdigit():
        return int(token)
    if token in _DIGITS:
        return _DIGITS[token]
    tens, sep, units = token.partition("十")
    if not sep or (tens and tens not in _DIGITS) or (units and units not in _DIGITS):
        return None
    if _DIGITS.get(tens) == 0 or _DIGITS.get(units) == 0:
        return None
    return (_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[units] if units else 0)


# control characters a database or a chat API refuses (PostgreSQL stores no NUL, JSON carries no lone
# surrogate); line breaks and tabs stay
_CONTROL = {code: None for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)}


def clean_text(text: str) -> str:
    """What a person typed, minus what no column can store: control characters dropped, a lone
    surrogate (half an emoji from a client) replaced by U+FFFD, a split pair joined."""
    text = text.translate(_CONTROL)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
