"""The shared taxonomy: intent and service-category codes, and the categories' display labels.

``common/data/taxonomy.json`` is a verbatim copy of the shared taxonomy; the code tuples below
must list exactly its keys (checked by tests/test_nlu.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from common.resources import load_json

__all__ = ["CATEGORIES", "CATEGORY_LABELS", "INTENTS", "category_label", "load_taxonomy"]

INTENTS: tuple[str, ...] = ("register", "activities", "hours", "request_service", "help", "other")
CATEGORIES: tuple[str, ...] = (
    "elderly",
    "disability",
    "children",
    "health",
    "legal",
    "counseling",
    "repair",
    "errands",
    "environment",
    "other",
)

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "elderly": {"zh-Hans": "助老服务", "zh-Hant": "助老服務", "en": "Elderly care"},
    "disability": {"zh-Hans": "助残服务", "zh-Hant": "助殘服務", "en": "Disability support"},
    "children": {"zh-Hans": "关爱儿童", "zh-Hant": "關愛兒童", "en": "Children & tutoring"},
    "health": {"zh-Hans": "义诊健康", "zh-Hant": "義診健康", "en": "Health & free clinics"},
    "legal": {"zh-Hans": "法律援助", "zh-Hant": "法律援助", "en": "Legal aid"},
    "counseling": {"zh-Hans": "心理关怀", "zh-Hant": "心理關懷", "en": "Counselling"},
    "repair": {"zh-Hans": "义务维修", "zh-Hant": "義務維修", "en": "Repairs"},
    "errands": {"zh-Hans": "代办代购", "zh-Hant": "代辦代購", "en": "Errands & shopping"},
    "environment": {"zh-Hans": "环境保护", "zh-Hant": "環境保護", "en": "Environment"},
    "other": {"zh-Hans": "其他求助", "zh-Hant": "其他求助", "en": "Other help"},
}


def category_label(code: str, language: str) -> str:
    """The label of a category code in ``zh-Hans`` / ``zh-Hant`` / ``en``; unknown codes read as "other"."""
    labels = CATEGORY_LABELS.get(code, CATEGORY_LABELS["other"])
    return labels.get(language, labels["zh-Hans"])


@cache
def _taxonomy() -> dict[str, dict[str, str]]:
    data: dict[str, Any] = load_json("taxonomy.json")
    return data


def load_taxonomy() -> dict[str, dict[str, str]]:
    """The taxonomy (``{"intents": {code: description}, "categories": {...}}``); a fresh copy."""
    return {key: dict(value) for key, value in _taxonomy().items()}
