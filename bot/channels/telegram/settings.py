"""Telegram settings (``TELEGRAM_*``); ``bot.config.Settings`` composes them."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field


class TelegramSettings(BaseModel):
    # empty token → channel off
    telegram_bot_token: str = ""
    telegram_webhook_url: str = ""  # set → webhook at /telegram; empty → long polling
    telegram_webhook_secret: str = ""
    telegram_api_base: str = "https://api.telegram.org"
    telegram_bot_username: str = ""  # for t.me deep links
    telegram_global_rate: float = Field(default=25.0, gt=0)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    def webhook_secret(self) -> str:
        """TELEGRAM_WEBHOOK_SECRET, or (when empty) one derived from the bot token, so a webhook is never open."""
        if self.telegram_webhook_secret:
            return self.telegram_webhook_secret
        return hashlib.sha256(f"webhook:{self.telegram_bot_token}".encode()).hexdigest()
