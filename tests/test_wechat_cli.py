"""``volunteer-bot wechat menu|qrcode`` against the fake WeChat API: the first as a real process of the
installed command, the others in this process (the token they share is stored in the database either way)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

from bot.commands.wechat import MENU_FILE
from models import utcnow
from models.db import create_engine, create_session_factory
from tests.conftest import TEST_KEY, _migrate
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers import add_activity, make_coordinator
from tests.test_cli import CLI, run_async


async def run_cli(args: list[str], *, cwd: Path, env: dict[str, str], process: bool = False) -> tuple[int, str, str]:
    if not process:  # in a thread: this loop keeps serving the fake API meanwhile
        done = await run_async(args, cwd=cwd, env={"ID_ENCRYPTION_KEY": TEST_KEY, **env}, check=False)
        return done.returncode, done.stdout, done.stderr
    full_env = {**os.environ, "ID_ENCRYPTION_KEY": TEST_KEY, **env}
    proc = await asyncio.create_subprocess_exec(CLI, *args, cwd=cwd, env=full_env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_menu_and_qrcode_commands(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'volunteer.db'}"
    await _migrate(url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    org_id = await make_coordinator(sessions, channel="wechat", user="o_coord", org="花家地社区")
    activity = await add_activity(sessions, org_id=org_id, start=utcnow() + timedelta(days=1))
    over = await add_activity(sessions, org_id=org_id, start=utcnow() - timedelta(days=3))
    await engine.dispose()
    async with FakeWeChatAPI() as api:
        env = {"DATABASE_URL": url, "WECHAT_TOKEN": "t", "WECHAT_APP_ID": api.app_id,
               "WECHAT_APP_SECRET": api.secret, "WECHAT_API_BASE": api.base_url, "WECHAT_MP_BASE": api.base_url}
        code, out, err = await run_cli(["wechat", "menu"], cwd=tmp_path, env=env, process=True)
        assert code == 0, err
        assert api.menu == json.loads(MENU_FILE.read_text(encoding="utf-8"))

        code, out, err = await run_cli(["wechat", "qrcode", "--activity", str(activity.id), "--action", "checkout"],
                                       cwd=tmp_path, env=env)
        assert code == 0, err
        image_url = out.splitlines()[0]
        assert image_url.startswith(f"{api.base_url}/cgi-bin/showqrcode?ticket=")
        request = api.calls_to("qrcode/create")[0].body
        assert request is not None
        assert request["action_info"]["scene"]["scene_str"] == f"checkout_{activity.checkin_code}"
        assert 24 * 3600 < request["expire_seconds"] <= 2592000

        code, out, err = await run_cli(["wechat", "qrcode", "--activity", str(over.id), "--action", "checkin"],
                                       cwd=tmp_path, env=env)
        assert code == 1 and "is over" in err
        code, out, err = await run_cli(["wechat", "qrcode", "--activity", "999", "--action", "checkin"],
                                       cwd=tmp_path, env=env)
        assert code == 1 and "no activity #999" in err
        bad_menu = tmp_path / "menu.json"
        bad_menu.write_text(json.dumps({"button": [{"type": "click", "name": "帮助帮助帮助帮助帮助", "key": "help"}]}),
                            encoding="utf-8")
        code, out, err = await run_cli(["wechat", "menu", "--file", str(bad_menu)], cwd=tmp_path, env=env)
        assert code == 1 and "40018" in err
        assert api.token_requests == 1  # the token the process cached in the database served every later command
