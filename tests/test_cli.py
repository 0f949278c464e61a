"""The ``volunteer-bot`` command: each command family at least once as a real process of the installed
entry point, the rest in this process (typer's runner), which tests the same command without paying
a second or two of imports per call."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import chdir
from pathlib import Path

from tests.conftest import TEST_DATA
from tests.helpers import adult_id

CLI = shutil.which("volunteer-bot") or str(Path(sys.executable).parent / "volunteer-bot")
CLI_KEY = "cli-test-key-0123456789"


def run(args: list[str], *, cwd: Path, stdin: str | bytes = "", env: dict[str, str] | None = None,
        check: bool = True, process: bool = False) -> subprocess.CompletedProcess[str]:
    """``volunteer-bot ARGS`` in ``cwd`` with ``env`` on top of this process's environment (DATABASE_URL
    unset unless given: the default SQLite file under ``cwd``). ``process``: as a real process of the
    installed command; otherwise in this process, in a thread of its own (a command's ``asyncio.run``
    then works under an async test too)."""
    if process:
        full_env = {**os.environ, "ID_ENCRYPTION_KEY": CLI_KEY}
        full_env.pop("DATABASE_URL", None)
        full_env.update(env or {})
        result = subprocess.run([CLI, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120,
                                env=full_env)
    else:
        with ThreadPoolExecutor(1) as thread:
            result = thread.submit(_in_process, args, cwd, stdin, env or {}).result(timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def run_async(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``run`` from an async test whose loop must keep serving (e.g. a fake API the command calls)."""
    return await asyncio.to_thread(run, args, **kwargs)  # type: ignore[arg-type]


def _in_process(args: list[str], cwd: Path, stdin: str | bytes,
                env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from typer.testing import CliRunner

    from bot.cli import app

    with chdir(cwd):  # the default database and relative paths, as for a process started there
        result = CliRunner().invoke(app, args, input=stdin,
                                    env={"ID_ENCRYPTION_KEY": CLI_KEY, "DATABASE_URL": None, **env})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # what a process would print
    return subprocess.CompletedProcess([CLI, *args], result.exit_code, result.stdout, stderr)


def test_piped_chat_registers_joins_and_answers_hours(tmp_path: Path) -> None:
    # first run on SQLite creates ./data/volunteer.db with its schema by itself
    run(["admin", "grant", "coordinator", "--channel", "console", "--user", "coord", "--org", "花家地社区",
         "--create"], cwd=tmp_path, process=True)
    assert (tmp_path / "data" / "volunteer.db").exists()
    create = "发布活动\n敬老院探访\n陪老人聊天\n1\n幸福敬老院\n跳过\n2031-12-05 09:00\n对\n11:30\n10\n1\n"
    out = run(["chat", "--user", "coord"], cwd=tmp_path, stdin=create).stdout
    assert "活动已发布" in out
    volunteer = f"注册\n王小丽\n{adult_id()}\n13800138000\n1,3\n花家地社区\n1\n活动\n1\n报名参加\n我的时长\n"
    out = run(["chat", "--user", "alice"], cwd=tmp_path, stdin=volunteer).stdout
    assert "> 注册" in out and "注册成功" in out and "报名成功" in out and "累计志愿服务时长：0 小时" in out
    assert adult_id() not in out.split("> 1\n", 1)[1]  # echoed input aside, the ID never shows in full


def test_classify_text_and_jsonl(tmp_path: Path) -> None:
    out = json.loads(run(["classify", "家里的电视坏了，有志愿者会修吗"], cwd=tmp_path, process=True).stdout)
    confidence, category_confidence = out.pop("confidence"), out.pop("category_confidence")
    assert out == {"text": "家里的电视坏了，有志愿者会修吗", "intent": "request_service",
                   "category": "repair", "language": "zh-Hans"}
    assert 0.6 < confidence <= 1 and 0.6 < category_confidence <= 1
    dev = TEST_DATA / "requests_dev.jsonl"
    lines = run(["classify", "--jsonl", str(dev)], cwd=tmp_path).stdout.splitlines()
    assert len(lines) == len(dev.read_text(encoding="utf-8").splitlines())
    assert all({"intent", "category"} <= json.loads(line).keys() for line in lines)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    result = run(["classify", "--jsonl", str(bad)], cwd=tmp_path, check=False)
    assert result.returncode == 1 and "bad.jsonl:2" in result.stderr


def test_nlu_train_and_eval(tmp_path: Path) -> None:
    out = run(["nlu", "eval"], cwd=tmp_path).stdout
    assert "intent accuracy" in out and "category accuracy" in out and "(rows: gold, columns: predicted)" in out
    intent = float(out.split("intent accuracy", 1)[1].split("=", 1)[1].split()[0])
    assert intent >= 0.97
    corpus = tmp_path / "small.jsonl"
    corpus.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in [
        {"text": "电视坏了", "intent": "request_service", "category": "repair"},
        {"text": "我要注册", "intent": "register", "category": None},
    ]) + "\n", encoding="utf-8")
    model = tmp_path / "model.json"
    trained = run(["nlu", "train", "--corpus", str(corpus), "--out", str(model), "--epochs", "2"], cwd=tmp_path,
                  process=True).stdout
    assert "trained on 2 messages" in trained and json.loads(model.read_text(encoding="utf-8"))["intent"]["labels"]


def test_admin_grant_validates_input(tmp_path: Path) -> None:
    result = run(["admin", "grant", "coordinator", "--channel", "telegram", "--user", "1"], cwd=tmp_path,
                 check=False)
    assert result.returncode == 1 and "--org" in result.stderr
    result = run(["admin", "grant", "boss", "--channel", "telegram", "--user", "1"], cwd=tmp_path, check=False)
    assert result.returncode == 1 and "admin or coordinator" in result.stderr
    assert "granted admin" in run(["admin", "grant", "admin", "--channel", "telegram", "--user", "1"],
                                  cwd=tmp_path).stdout


def test_bad_admins_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = run(["chat"], cwd=tmp_path, env={"ADMINS": "telegram123"}, check=False)
    assert result.returncode == 2 and "channel:user_id" in result.stderr


def test_db_upgrade_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    out = run(["db", "upgrade"], cwd=tmp_path, env={"DATABASE_URL": postgres_url}, process=True).stdout
    assert "up to date" in out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_healthz_and_a_login_link_opens_the_web_console(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "ID_ENCRYPTION_KEY": "cli-test-key-0123456789", "PORT": str(port)}
    env.pop("DATABASE_URL", None)
    env.pop("PUBLIC_BASE_URL", None)
    run(["admin", "grant", "coordinator", "--channel", "console", "--user", "coord", "--org", "花家地社区", "--create"], cwd=tmp_path)
    refused = run(["web", "login-link", "--channel", "console", "--user", "nobody"], cwd=tmp_path, check=False)
    assert refused.returncode == 1 and "no console user" in refused.stderr
    proc = subprocess.Popen([CLI, "serve"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # a bound, not a pace: starting takes seconds when idle and a minute or more on a busy machine
        # (importing aiogram alone builds hundreds of pydantic models)
        deadline = time.monotonic() + 300
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    body = json.loads(response.read())
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.2)
        assert body == {"status": "ok", "database": "ok", "pid": proc.pid}
        link = run(["web", "login-link", "--channel", "console", "--user", "coord"], cwd=tmp_path,
                   env={"PORT": str(port)}, process=True).stdout.strip()
        assert link.startswith(f"http://127.0.0.1:{port}/admin/login/")
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(link, timeout=30) as response:  # the cookie is set, the redirect followed
            assert response.url.endswith("/admin/") and "花家地社区" in response.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0


def test_ledger_export_writes_csv_and_refuses_unknown_organizations(tmp_path: Path) -> None:
    run(["org", "add", "望京街道"], cwd=tmp_path, process=True)
    out = tmp_path / "ledger.csv"
    assert "wrote" in run(["ledger", "export", "--org", "望京街道", "--out", str(out)], cwd=tmp_path,
                          process=True).stdout
    text = out.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff日期,姓名") and "合计" in text
    result = run(["ledger", "export", "--org", "不存在"], cwd=tmp_path, check=False)
    assert result.returncode == 1 and "不存在" in result.stderr
    result = run(["ledger", "export", "--org", "望京街道", "--from", "2026/1/1"], cwd=tmp_path, check=False)
    assert result.returncode == 1 and "2026-03-05" in result.stderr


def test_serve_with_an_unreachable_database_retries_in_one_line_each_and_gives_up_clearly(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["serve", "--port", "0", "--db-attempts", "3", "--db-retry-delay", "0.05"], cwd=tmp_path,
                 env={"DATABASE_URL": f"postgresql+asyncpg://bot:secret@127.0.0.1:{port}/volunteer"}, check=False,
                 process=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
    retries = [line for line in lines if "unreachable (attempt" in line]
    assert len(retries) == 2 and "attempt 1/3" in retries[0] and "retrying in" in retries[0]
    assert lines[-1].startswith("database postgresql+asyncpg://bot:***@127.0.0.1:")
    assert "unreachable after 3 attempt(s), giving up" in lines[-1]
    assert len([line for line in lines if "ID_ENCRYPTION_KEY" not in line]) == 3


def test_piped_chat_survives_any_input(tmp_path: Path) -> None:
    """Arguments out of range, superscripts, control characters and bytes that are not UTF-8: every
    line gets an answer and the chat ends normally at end of input, never with a traceback."""
    huge = "9" * 24
    lines = ["/act ²", f"/act {huge}", f"/start act_{huge}", f"/cancelreq {huge}", "帮助", "²", "注册", "李\x00雷",
             "/join -1", "长" * 3000]
    stdin = "\n".join(lines).encode() + b"\n\xff\xfe broken \xc3\n\xe4\xbd\n" + "帮助\n".encode()
    env = {**os.environ, "ID_ENCRYPTION_KEY": "cli-test-key-0123456789"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([CLI, "chat", "--user", "odd"], cwd=tmp_path, input=stdin, capture_output=True, timeout=120,
                            env=env)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")
    out = result.stdout.decode()
    assert out.count("\n> ") + out.startswith("> ") == len(lines) + 3  # every line echoed and answered
    assert out.count("过期") >= 3 and "出了点问题" not in out
    assert "志愿助手" in out.rsplit("> ", 1)[1]  # the last line, 帮助, got the menu


def readme_try_it() -> list[tuple[list[str], str]]:
    """The commands of README.md's "Try it" block, in order: (arguments, piped stdin)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        stdin = ""
        if line.startswith("printf "):
            printed, line = line.split(" | ", 1)
            (text,) = shlex.split(printed[len("printf "):])
            stdin = text.replace("\\n", "\n")
        words = shlex.split(line)
        assert words[0] == "volunteer-bot", line
        commands.append((words[1:], stdin))
    return commands


def test_readme_try_it_works_from_a_clean_directory(tmp_path: Path) -> None:
    commands = readme_try_it()
    assert len(commands) >= 7
    # the last one (certificate) as a real process; the chats' real process is test_piped_chat_survives_any_input
    outputs = [run(args, cwd=tmp_path, stdin=stdin, env={"PUBLIC_BASE_URL": "https://v.example.org"},
                   process=number == len(commands)).stdout
               for number, (args, stdin) in enumerate(commands, 1)]
    joined = "\n".join(outputs)
    # published with a Chinese time phrase, read back and kept as 14:30
    assert "2026-12-20（周日）14:30，对吗？" in joined and "2026-12-20(周日) 14:30–17:00" in joined
    assert "活动已发布（编号 1）" in joined
    assert "注册成功" in joined and "报名成功" in joined
    assert "已为 王小丽 记录 2.5 小时" in joined
    assert "更正申请已提交" in joined and "已批准更正 #1" in joined
    assert "你申请的更正已批准：2026-12-20 的记录现在计 2 小时" in joined and "累计志愿服务时长：2 小时" in joined
    assert "敬老院探访 2 小时（记录人：本组织协调员）" in joined  # the coordinator never registered
    assert "志愿服务证明已开具" in joined and "https://v.example.org/verify/" in joined
    assert "wrote alice.pdf" in outputs[-1] and ", 2 h," in outputs[-1]
    assert (tmp_path / "alice.pdf").read_bytes().startswith(b"%PDF")
