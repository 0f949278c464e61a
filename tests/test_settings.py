"""Settings: every field is documented in .env.example, and bad values are refused clearly."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from bot.config import Settings
from tests.conftest import REPO


def test_env_example_lists_every_setting() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(encoding="utf-8"), re.M))
    assert {name.upper() for name in Settings.model_fields} == documented


def test_admins_are_parsed_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMINS", "telegram:1, wechat:oABC")
    assert Settings(_env_file=None).admins == ["telegram:1", "wechat:oABC"]
    monkeypatch.setenv("ADMINS", "telegram1")
    with pytest.raises(ValidationError, match="channel:user_id"):
        Settings(_env_file=None)


def test_short_encryption_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ID_ENCRYPTION_KEY", "short")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
