"""Telegram: the full ``serve`` webhook pipeline against a bare aiogram echo, both as real server processes.

    .venv/bin/python bench/bench_telegram.py                    # SQLite, 1,008 updates, 16 users, 3 rounds
    .venv/bin/python bench/bench_telegram.py --db postgresql    # BENCH_POSTGRES_URL (default: local server)
    .venv/bin/python bench/bench_telegram.py --source /tmp/old  # the serve of another checkout

Each round starts two servers, one after the other, each in its own process:

* bare — aiogram's ``SimpleRequestHandler`` (secret token checked) and a one-handler Dispatcher
  answering ``message.answer(text)``; no database;
* full — ``volunteer-bot serve`` with the Telegram channel on in webhook mode (POST /telegram, the
  X-Telegram-Bot-Api-Secret-Token header): convert → core Engine (dedupe row, identity, dialog,
  feature handler) → database → sendMessage;
* adapter (``--servers bare,adapter,full``) — the channel's own ``setup`` on a bare web app with a stub
  core that answers "收到：<text>" without a database: what the channel costs apart from the engine
  (secret, JSON, admission, convert, render, sendMessage), beside the bare echo doing the same work.

This process is the load generator and also hosts the fake Bot API (tests/fakes) both servers
send to. Both webhooks answer 200 at once and handle the update in the background, so the HTTP
answer says nothing: the latency of one update is from the start of its POST until the fake Bot
API received its (first) reply. Each of ``--users`` users sends its next update when the previous
one was fully answered (``--users`` in flight): registration (注册, name, ID number, phone,
skills, area, 确认), then 帮助 / 活动 / 我的时长 / 你好 in turn. How many messages the full
pipeline sends for each step is learned in the warm-up of the first round (wait until the chat is quiet), so the
measured rounds wait for exactly those.

Also printed: each server's CPU milliseconds per update over the measured load (user + system time from
/proc), which a busy machine moves less than updates/s. ``--profile FILE`` profiles the full server's main
thread (``--profile-server adapter``: the adapter's) over the measured load only — start-up, imports and
warm-up excluded — in CPU time (``time.process_time``, so waiting for the other processes is not counted),
and writes it to FILE (the last round's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_wechat import (  # noqa: E402
    PG_BASE,
    Result,
    free_port,
    pg_admin,
    prepare_database,
    stop_server,
    wait_ready,
)

from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramAPI, message_update  # noqa: E402

SECRET = "bench-secret"
REGISTRATION = ("注册", "<name>", "<id>", "13800138000", "1,3", "花家地社区", "1")
CYCLE = ("帮助", "活动", "我的时长", "你好")
KINDS = ("bare", "adapter", "full")
QUIET_SECONDS = 0.3  # warm-up: a chat with no new message for this long has its whole answer


# ---- the bare endpoint (run in its own process: --bare PORT API_BASE) ------------------------------
def run_bare(port: int, api_base: str) -> None:
    from aiogram import Bot, Dispatcher, Router
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler
    from aiohttp import web

    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(f"收到：{message.text}")  # a text, as the fake reads "1" as a number

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    app = web.Application()
    bot = Bot(token=DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot,
                         secret_token=SECRET).register(app, path="/telegram")
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# the profiler a server process installs: SIGUSR1 starts it, SIGUSR2 stops it and writes the file
PROFILE_HOOK = """
import cProfile, os, signal, time
_profiler = cProfile.Profile(time.process_time)
def _dump(*_args):
    _profiler.disable()
    _profiler.dump_stats({path!r} + ".part")
    os.replace({path!r} + ".part", {path!r})  # whole or not at all for the bench reading it
signal.signal(signal.SIGUSR1, lambda *_args: _profiler.enable())
signal.signal(signal.SIGUSR2, _dump)
"""


# ---- the channel with a stub core (run in its own process: --adapter PORT API_BASE --source DIR) ------
def run_adapter(port: int, api_base: str, source: Path, profile: Path | None) -> None:
    """``source``'s Telegram channel, mounted as ``serve`` mounts it, in front of a core that only echoes."""
    sys.path.insert(0, str(source))  # before any project import: the checkout under test
    if profile is not None:
        exec(PROFILE_HOOK.format(path=str(profile)), {})
    from aiohttp import web

    from bot.channels.telegram import channel as telegram
    from bot.config import Settings
    from bot.runtime import Runtime
    from handlers.engine import Handled
    from handlers.messages import Inbound, Reply
    from models.db import create_engine, create_session_factory

    class EchoCore:
        """The engine's channel-facing surface, answering like the bare echo (no database, no turn)."""

        async def handle_delivery(self, inbound: Inbound) -> Handled:
            return Handled([Reply(text=f"收到：{inbound.text}")])

        async def handle(self, inbound: Inbound) -> list[Reply]:
            return (await self.handle_delivery(inbound)).replies

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def build() -> web.Application:
        settings = Settings(_env_file=None, database_url="sqlite+aiosqlite://", telegram_bot_token=DEFAULT_TOKEN,
                            telegram_api_base=api_base, telegram_webhook_url="https://bench.invalid/telegram",
                            telegram_webhook_secret=SECRET)
        db = create_engine(settings.database_url)  # never connected: the stub core reads nothing
        runtime = Runtime(settings=settings, db=db, sessions=create_session_factory(db), core=EchoCore())  # type: ignore[arg-type]
        app = web.Application()
        app.router.add_get("/healthz", healthz)
        await telegram.setup(app, runtime)
        return app

    web.run_app(build(), host="127.0.0.1", port=port, access_log=None, print=None)


# ---- the load ---------------------------------------------------------------------------------------
def script(updates_per_user: int, serial: int) -> list[str]:
    """One user's texts in order: the registration dialog, then the everyday questions in turn."""
    from handlers.validation import make_id_number

    id_number = make_id_number(f"110101{1960 + serial % 40}0307{serial % 1000:03d}")
    steps = {"<name>": f"张{serial}", "<id>": id_number}
    texts = [steps.get(text, text) for text in REGISTRATION]
    while len(texts) < updates_per_user:
        texts.append(CYCLE[(len(texts) - len(REGISTRATION)) % len(CYCLE)])
    return texts[:updates_per_user]


async def load(port: int, api: FakeTelegramAPI, first_user: int, args: argparse.Namespace,
               answers: list[int] | None) -> tuple[Result, list[int]]:
    """Every user sends their script; ``answers[i]`` = messages step i gets (None: learn them by quiet)."""
    url = f"http://127.0.0.1:{port}/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    per_user = args.updates // args.users
    latencies: list[float] = []
    learned: list[list[int]] = [[] for _ in range(per_user)]
    errors = 0

    async def user(session: aiohttp.ClientSession, chat_id: int) -> None:
        nonlocal errors
        seen = 0  # messages this chat has received so far
        scan = counted = 0  # api.calls[:scan] hold ``counted`` messages to this chat
        for step, text in enumerate(script(per_user, chat_id)):
            update = message_update(chat_id * 1000 + step, user_id=chat_id, text=text)
            began = time.monotonic()  # the fake stamps each call with time.monotonic()
            async with session.post(url, json=update, headers=headers) as response:
                await response.read()
            if response.status != 200:
                errors += 1
                continue
            try:
                if answers is None:
                    await api.wait_for_sent(chat_id, count=seen + 1, within=60)
                    while True:  # the rest of this answer, if any
                        count = api._sent_count.get(chat_id, 0)
                        await asyncio.sleep(QUIET_SECONDS)
                        if api._sent_count.get(chat_id, 0) == count:
                            break
                    learned[step].append(count - seen)
                else:
                    await api.wait_for_sent(chat_id, count=seen + answers[step], within=60)
            except TimeoutError:
                errors += 1
                return
            first_reply = 0.0
            while counted <= seen:  # find this answer's first message among all the fake's calls
                call = api.calls[scan]
                scan += 1
                if call.method.lower() == "sendmessage" and call.status == 200 and call.params.get("chat_id") == chat_id:
                    counted += 1
                    first_reply = call.at
            seen = api._sent_count.get(chat_id, 0)
            if answers is not None:
                latencies.append(first_reply - began)

    connector = aiohttp.TCPConnector(limit=args.users)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = asyncio.get_running_loop().time()
        await asyncio.gather(*(user(session, first_user + n) for n in range(args.users)))
        seconds = asyncio.get_running_loop().time() - began
    # the count most users saw: on a busy machine a late message can fall into the next step's quiet
    # window for one user, and waiting for one message too many would stall that user for good
    counts = [statistics.mode(step) if step else 1 for step in learned]
    return Result(seconds, latencies, errors), counts


# ---- the servers ------------------------------------------------------------------------------------
def start_server(kind: str, port: int, *, api_base: str, database_url: str, source: Path,
                 data_dir: Path, profile: Path | None = None) -> subprocess.Popen[bytes]:
    if kind == "bare":
        return subprocess.Popen([sys.executable, __file__, "--bare", str(port), "--api-base", api_base])
    if kind == "adapter":
        command = [__file__, "--adapter", str(port), "--api-base", api_base, "--source", str(source)]
        if profile is not None:
            command += ["--profile", str(profile)]
        return subprocess.Popen([sys.executable, *command], env={**os.environ, "LOG_LEVEL": "WARNING"})
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
           "ID_ENCRYPTION_KEY": "bench-key-0123456789abcdef", "SCHEDULER_LOCK_FILE": str(data_dir / "lock"),
           "WECHAT_TOKEN": "", "WECHAT_APP_ID": "", "WECHAT_APP_SECRET": "",
           "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_API_BASE": api_base,
           "TELEGRAM_WEBHOOK_URL": "https://bench.invalid/telegram", "TELEGRAM_WEBHOOK_SECRET": SECRET}
    code = f"import sys; sys.path.insert(0, {str(source)!r}); from bot.cli import main; main()"
    if profile is not None:  # the main thread's calls (aiosqlite's worker thread is not seen)
        code = PROFILE_HOOK.format(path=str(profile)) + code
    return subprocess.Popen([sys.executable, "-c", code, "serve", "--port", str(port)], env=env, cwd=data_dir)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): a figure the machine's load moves less."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(kind: str, api: FakeTelegramAPI, round_no: int, args: argparse.Namespace, database_url: str,
                  data_dir: Path, answers: dict[str, list[int]]) -> tuple[Result, float]:
    """The measured load's result and the server's CPU milliseconds per update."""
    port = free_port()
    profile = args.profile if kind == args.profile_server and args.profile else None
    proc = start_server(kind, port, api_base=api.base_url, database_url=database_url, source=args.source,
                        data_dir=data_dir, profile=profile)
    users = 10_000 * (3 * round_no + KINDS.index(kind))  # new users in every round and server
    try:
        await wait_ready(port, proc)
        # warm-up (catalogs, statement caches, pool) by other users, learning how many messages each step gets
        # (learned in the first round only; a later warm-up that times out shows as errors)
        warm, learned = await load(port, api, 10_000_000 + users, args, answers.get(kind))
        answers.setdefault(kind, learned)
        if warm.errors:
            print(f"  warning: {warm.errors} errors in the {kind} warm-up")
        cpu_before = cpu_seconds(proc.pid)
        if profile is not None:
            os.kill(proc.pid, signal.SIGUSR1)
        result, _ = await load(port, api, users, args, answers[kind])
        if profile is not None:
            profile.unlink(missing_ok=True)
            os.kill(proc.pid, signal.SIGUSR2)
            for _ in range(100):  # written by the server's main thread
                if profile.exists():
                    stats = pstats.Stats(str(profile))
                    updates = max(1, len(result.latencies))
                    print(f"  {kind} profile: {stats.total_calls / updates:.0f} Python function calls and "  # type: ignore[attr-defined]
                          f"{stats.total_tt * 1000 / updates:.2f} profiled CPU ms per update → {profile}")  # type: ignore[attr-defined]
                    break
                await asyncio.sleep(0.1)
        return result, (cpu_seconds(proc.pid) - cpu_before) * 1000 / max(1, len(result.latencies))
    finally:
        stop_server(proc)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        pg_name = f"vb_bench_telegram_{os.getpid()}"
        if args.db == "postgresql":
            await pg_admin(f'CREATE DATABASE "{pg_name}"')
            url = make_url(PG_BASE).set(database=pg_name).render_as_string(hide_password=False)
        else:
            url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
        try:
            await prepare_database(url, args.source)
            per_user = args.updates // args.users
            print(f"Telegram webhook: {per_user * args.users} updates from {args.users} users ({args.users} in "
                  f"flight), {args.db}, serve from {args.source}; load average {os.getloadavg()[0]:.1f}")
            ratios: list[float] = []
            p99s: list[float] = []
            cpus: dict[str, list[float]] = {kind: [] for kind in args.servers}
            answers: dict[str, list[int]] = {}
            async with FakeTelegramAPI() as api:
                for round_no in range(1, args.rounds + 1):
                    results: dict[str, tuple[Result, float]] = {}
                    for kind in args.servers:
                        results[kind] = await measure(kind, api, round_no, args, url, data_dir, answers)
                        result, cpu = results[kind]
                        cpus[kind].append(cpu)
                        print(f"  round {round_no} {kind:7}: {result.rate:7.1f} updates/s  p50 {result.pct(0.5):6.1f} ms"
                              f"  p99 {result.pct(0.99):6.1f} ms  errors {result.errors}  server CPU {cpu:5.2f} ms/update")
                    if "full" in results and "bare" in results:
                        ratio = results["full"][0].rate / results["bare"][0].rate
                        ratios.append(ratio)
                        p99s.append(results["full"][0].pct(0.99))
                        print(f"  round {round_no} full : bare = {ratio:.0%}  (load average {os.getloadavg()[0]:.1f})")
                    api.calls.clear()  # keep the scans short; the per-chat counts stay
            print(f"messages per update (full): {answers.get('full')}")
            if ratios:
                print(f"median full : bare = {statistics.median(ratios):.0%} (rounds: "
                      f"{', '.join(f'{r:.0%}' for r in ratios)}); full p99 median {statistics.median(p99s):.1f} ms")
            print("server CPU ms/update, median (rounds): " + "; ".join(
                f"{kind} {statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"
                for kind, values in cpus.items()) + f"; load average {os.getloadavg()[0]:.1f}")
        finally:
            if args.db == "postgresql":
                await pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--updates", type=int, default=1000, help="per server and round (rounded down to users)")
    parser.add_argument("--users", type=int, default=16, help="users, each with one update in flight")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", type=Path, default=REPO, help="the checkout whose serve to start")
    parser.add_argument("--servers", type=lambda v: [k for k in KINDS if k in v.split(",")], default=["bare", "full"],
                        help="which servers each round starts, of bare,adapter,full (default: bare,full)")
    parser.add_argument("--profile", type=Path, help="write a server's cProfile (last round) to this file")
    parser.add_argument("--profile-server", choices=KINDS[1:], default="full", help="whose profile (default: full)")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--adapter", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.bare:
        run_bare(arguments.bare, arguments.api_base)
    elif arguments.adapter:
        run_adapter(arguments.adapter, arguments.api_base, arguments.source, arguments.profile)
    else:
        asyncio.run(main(arguments))
