"""The traditional names of lunar months and days (data: ``common/data/lunar.json``)."""

from __future__ import annotations

import functools

from common.resources import load_json

__all__ = ["lunar_day_name", "lunar_month_name"]


@functools.cache
def _names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    data = load_json("lunar.json")
    months, days = tuple(data["months"]), tuple(data["days"])
    assert len(months) == 12 and len(days) == 30, "lunar.json: 12 months and 30 days"
    return months, days


def lunar_month_name(month: int) -> str:
    """1 → 正, 11 → 冬, 12 → 腊 (followed by 月 where it is printed)."""
    return _names()[0][month - 1]


def lunar_day_name(day: int) -> str:
    """1 → 初一, 15 → 十五, 21 → 廿一."""
    return _names()[1][day - 1]
