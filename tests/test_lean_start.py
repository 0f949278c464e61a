"""``serve`` starts lean: the Telegram adapter is imported only when Telegram is on, and aiogram (~120 MiB,
~4.5 s of start-up) never: with Telegram on, the channel speaks the Bot API as JSON itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


# ``serve`` with Telegram on, as bot/serve.py runs it (runtime, every enabled channel mounted, the background
# services with the outbox's Telegram sender, the app's start-up hooks), against the fake Bot API: the start-up
# calls are made, one update (webhook POST or getUpdates) is answered, and then aiogram must not be loaded.
SERVE_PROBE = """
import asyncio, json, sys
import aiohttp
from aiohttp import web
from bot.app import create_app
from bot.config import Settings
from bot.serve import channel_setups, start_runtime
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramAPI, message_update

MODE, DB, LOCK = sys.argv[1:4]
SECRET = "probe-secret"

async def main():
    async with FakeTelegramAPI() as api:
        settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{DB}", wechat_token="t",
                            id_encryption_key="k" * 24, scheduler_lock_file=LOCK, telegram_bot_token=DEFAULT_TOKEN,
                            telegram_api_base=api.base_url, telegram_webhook_secret=SECRET,
                            telegram_webhook_url="https://bot.example.org/telegram" if MODE == "webhook" else "")
        runtime = await start_runtime(settings, attempts=1)
        app = await create_app(runtime, channels=channel_setups(settings))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            await api.wait_for("setMyCommands", count=3)
            update = message_update(1, user_id=4242, text="/start")
            if MODE == "webhook":
                await api.wait_for("setWebhook")
                async with aiohttp.ClientSession() as http:
                    async with http.post(f"http://127.0.0.1:{port}/telegram", json=update,
                                         headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                        assert response.status == 200, response.status
            else:
                await api.wait_for("deleteWebhook")
                api.queue_update(update)
            await api.wait_for_sent(4242, within=60)
        finally:
            await runner.cleanup()
            await runtime.close()
        print(json.dumps({"calls": sorted({c.method for c in api.calls}), "answer": api.sent_texts(4242)[0],
                          "aiogram": sorted(m for m in sys.modules if m.split(".")[0] == "aiogram")}))

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["webhook", "polling"])
def test_serve_with_telegram_on_answers_without_importing_aiogram(mode: str, sqlite_template: Path,
                                                                   tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    shutil.copy(sqlite_template, db)
    done = subprocess.run([sys.executable, "-c", SERVE_PROBE, mode, str(db), str(tmp_path / "lock")], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "志愿助手" in found["answer"]  # the update went through the channel and the core, the reply out
    assert "setMyCommands" in found["calls"]
    assert ("setWebhook" if mode == "webhook" else "deleteWebhook") in found["calls"]
    assert found["aiogram"] == []


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
