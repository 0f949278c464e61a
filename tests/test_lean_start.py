"""``serve`` starts lean: the Telegram adapter (aiogram, ~150 MiB) is imported only when Telegram is on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from bot.config import Settings
from bot.serve import channel_setups
from bot.channels.registry import channel_names
settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///unused.db", wechat_token="t",
                    id_encryption_key="k" * 24)
setups = channel_setups(settings)
print(json.dumps({"names": list(channel_names()), "heavy": sorted(m for m in ("aiogram", "alembic", "qrcode", "reportlab",
                                                                               "xlsxwriter")
                  if m in sys.modules)}))
"""


def test_serve_with_wechat_and_console_does_not_import_aiogram() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "TELEGRAM_BOT_TOKEN": ""})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["names"] == ["console", "telegram", "wechat"]  # every channel is still listed
    assert found["heavy"] == []


def test_registry_names_match_the_adapters() -> None:
    from bot.channels.telegram import convert as telegram_convert
    from bot.channels.telegram.plugin import TelegramPlugin
    from bot.channels.wechat import convert as wechat_convert
    from bot.channels.wechat.plugin import WeChatPlugin
    from services.wechat_state import REPLY_PAGES_CHANNEL

    assert TelegramPlugin.name == telegram_convert.CHANNEL
    assert WeChatPlugin.name == wechat_convert.CHANNEL == REPLY_PAGES_CHANNEL


def test_the_cli_lists_its_commands_without_loading_the_engine() -> None:
    """``volunteer-bot --help`` and the commands that need no database start without the engine, the
    database layer or the web framework: each command imports those when it runs."""
    probe = ("import json, sys\nfrom bot.cli import app\n"
             "print(json.dumps(sorted(m for m in ('handlers.engine', 'bot.runtime', 'models', 'sqlalchemy', 'aiohttp',"
             " 'pydantic_settings', 'zhconv', 'alembic') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
