"""``volunteer-bot serve --workers N``: N real processes on one port (PostgreSQL), one /metrics for all of
them; SQLite refuses with one clear line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import unused_port
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO
from tests.wechat_harness import TOKEN, text_xml, url_signature


def _env(db_url: str, tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": db_url, "WECHAT_TOKEN": TOKEN, "SCHEDULER_LOCK_FILE": str(tmp_path / "lock"),
           "LOG_LEVEL": "WARNING", "TELEGRAM_BOT_TOKEN": ""}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def test_sqlite_refuses_more_than_one_worker(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--workers", "2", "--port", str(unused_port())],
                            cwd=REPO, env=_env(f"sqlite+aiosqlite:///{tmp_path}/one.db", tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PostgreSQL" in lines[0] and "SQLite" in lines[0]


def _serve(db_url: str, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--workers", "2", "--port", str(port)],
                            cwd=REPO, env=_env(db_url, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def _pids_seen(base: str, *, wanted: int, patience: float = 240.0) -> set[int]:
    """/healthz over fresh connections until ``wanted`` different workers answered (the kernel spreads
    connections over the workers by their source port). Patience: a worker starts in ~5 s on an idle
    machine but took ~50 s on the shared test machine."""
    pids: set[int] = set()
    give_up = time.monotonic() + patience
    while time.monotonic() < give_up:
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http, \
                    http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    pids.add((await response.json())["pid"])
        except aiohttp.ClientConnectionError:
            pass  # the workers are still starting
        if len(pids) >= wanted:
            break
        await asyncio.sleep(0.2)
    return pids


async def test_two_workers_on_postgresql_share_the_port_and_the_metrics(postgres_url: str, tmp_path: Path) -> None:
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(postgres_url, tmp_path, port)
    try:
        pids = await _pids_seen(base, wanted=2)
        assert len(pids) == 2 and server.pid not in pids, pids
        replies = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for n in range(6):
                timestamp, nonce = str(int(time.time())), str(5000 + n)
                query = {"signature": url_signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
                async with http.post(f"{base}/wechat", params=query,
                                     data=text_xml(f"o_worker{n}", "帮助").encode()) as response:
                    replies.append(await response.text())
            async with http.get(f"{base}/metrics") as response:
                exposition = await response.text()
        assert all("我是志愿助手" in reply for reply in replies)
        turns = sum(sample.value for family in text_string_to_metric_families(exposition)
                    for sample in family.samples if sample.name == "volunteer_turn_seconds_count")
        assert turns == 6  # one scrape of either worker sums both (multiprocess mode)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.wait, 60)
        except subprocess.TimeoutExpired:
            server.kill()
    assert server.returncode == 0, (server.stderr.read() if server.stderr else b"")[-2000:]
