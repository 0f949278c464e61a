"""Settings from the environment and ``.env`` (pydantic-settings)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.channels.telegram.settings import TelegramSettings
from bot.channels.wechat.settings import WeChatSettings
from handlers.context import CoreOptions

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/volunteer.db"
# Development-only key: a deployment must set ID_ENCRYPTION_KEY (see .env.example).
DEV_ENCRYPTION_KEY = "dev-only-change-me-0123456789abcdef"


class Settings(WeChatSettings, TelegramSettings, BaseSettings):
    """The general settings here; each channel's own (``WECHAT_*``, ``TELEGRAM_*``) come from its
    ``bot/channels/<name>/settings.py`` model. Environment variable names are the field names."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    id_encryption_key: str = Field(default=DEV_ENCRYPTION_KEY, min_length=16)
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8080
    page_size: int = Field(default=5, ge=1, le=20)
    flow_timeout_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    log_level: str = "INFO"
    # ---- load: turns run at once per process, and how long a queued message may wait at most ----
    core_concurrency: int = Field(default=8, ge=1, le=64)
    admission_max_wait: float = Field(default=30.0, gt=0, le=600)
    # public base URL of this server (for links and webhooks), e.g. https://bot.example.org
    public_base_url: str = ""
    # a CJK TrueType font (.ttf/.ttc) embedded in 志愿服务证明 PDFs; empty → known system paths
    certificate_font: str = ""
    # optional Redis (shared caches such as the WeChat access token); empty → the database is used
    redis_url: str = ""
    # ---- reminders and outbox ----
    quiet_hours_start: str = "21:30"
    quiet_hours_end: str = "08:00"
    reminder_days_before: int = Field(default=3, ge=0, le=30)
    scheduler_lock_file: str = "./data/scheduler.lock"

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("admins")
    @classmethod
    def _check_admins(cls, value: list[str]) -> list[str]:
        for item in value:
            channel, sep, user = item.partition(":")
            if not sep or not channel or not user:
                raise ValueError(f"ADMINS entry {item!r} must look like channel:user_id")
        return value

    def core_options(self) -> CoreOptions:
        return CoreOptions(
            encryption_key=self.id_encryption_key,
            admins=frozenset(self.admins),
            timezone=self.timezone,
            page_size=self.page_size,
            flow_timeout=timedelta(minutes=self.flow_timeout_minutes),
            public_base_url=self.public_base_url.rstrip("/"),
        )
