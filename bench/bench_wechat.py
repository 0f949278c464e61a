"""WeChat: the full ``serve`` pipeline against a bare wechatpy endpoint, both as real server processes.

    .venv/bin/python bench/bench_wechat.py                      # SQLite, 600 messages, 8 in flight, 3 rounds
    .venv/bin/python bench/bench_wechat.py --db postgresql      # BENCH_POSTGRES_URL (default: local server)
    .venv/bin/python bench/bench_wechat.py --source /tmp/old    # the serve of another checkout
    .venv/bin/python bench/bench_wechat.py --rounds 1 --profile /tmp/wechat.prof   # where the server's time goes
    .venv/bin/python bench/bench_wechat.py --stub-core          # everything but the engine's turn

Each round starts two servers, one after the other, each in its own process:

* bare — an aiohttp endpoint doing only what any WeChat endpoint must: ``check_signature`` +
  ``parse_message`` + ``create_reply(...).render()`` (wechatpy), no database;
* bare+db (``--with-db-floor``) — the bare endpoint plus one transaction per message on the same database
  (claim the message id, commit: the least an endpoint that answers each message once must write), on the
  driver itself; a floor for any endpoint with a database, beside the issue's bare baseline;
* full — ``volunteer-bot serve`` with the WeChat channel on: signature, XML, dedupe, the core's turn
  on the database, pagination, the passive reply.

This process is the load generator: it posts the same signed texts to each (``--concurrency`` in
flight, each user's messages in order), from distinct users with a realistic mix — help, the
activity list, my hours, small talk, registration steps (name, ID number, phone) — and prints
requests/s, p50/p99 latency, the server process's CPU per request (all its threads, from /proc: on a
busy machine a steadier figure than requests/s) and full : bare. ``--profile`` runs the full server
under cProfile for the measured load only (main thread) and prints Python calls per request, a
figure the machine's load does not move, and the top entries. Ratios are measured within one round,
so a busy machine slows both sides alike; the rounds show the spread.

``--stub-core`` replaces the engine's turn in the full server by a canned reply (a menu of six
choices, no database): what is left is the channel's own cost per request — HTTP, signature, XML,
the replay guard's write, admission, the reply — the part outside the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import PG_BASE, free_port, migrate_checkout, pg_admin  # noqa: E402

TOKEN = "benchtoken"
# what one user sends, in order; users take these in turn (4 messages each)
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("帮助", "活动", "我的时长", "谢谢"),
    ("注册", "张三", "<id>", "13800138000"),
    ("活动", "帮助", "我的时长", "你好"),
    ("我的时长", "活动", "取消", "帮助"),
)


# ---- the bare endpoint (run in its own process: --bare PORT [--bare-db URL]) ---------------------
def run_bare(port: int, database_url: str | None = None) -> None:
    from aiohttp import web
    from wechatpy import create_reply, parse_message
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature

    async def handle(request: web.Request) -> web.Response:
        query = request.query
        try:
            check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
        except (InvalidSignatureException, KeyError):
            return web.Response(status=403)
        message = parse_message(await request.read())
        if claim is not None and not await claim(f"{message.source}:{message.id}"):
            return web.Response(text="success")  # a retry of a message already answered
        xml = create_reply(f"收到：{getattr(message, 'content', '')}", message).render()
        return web.Response(text=xml, content_type="application/xml")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    claim = None
    app = web.Application()
    if database_url is not None:
        async def open_claims(app: web.Application) -> None:
            nonlocal claim
            claim = await message_claims(database_url)
        app.on_startup.append(open_claims)
    app.router.add_post("/wechat", handle)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)



async def message_claims(database_url: str) -> Callable[[str], Awaitable[bool]]:
    """The bare+db floor's one transaction per message: claim its id (a retry finds it taken) and commit,
    on the driver itself (asyncpg's pool / one aiosqlite connection in WAL, as ``serve`` runs SQLite) — the
    least an endpoint that answers each message once, across restarts, must write."""
    url = make_url(database_url)
    create = "CREATE TABLE IF NOT EXISTS bench_claim (key VARCHAR(200) PRIMARY KEY)"
    if url.drivername.startswith("postgresql"):
        import asyncpg

        pool = await asyncpg.create_pool(host=url.host, port=url.port or 5432, user=url.username,
                                         database=url.database, min_size=4, max_size=8)
        await pool.execute(create)

        async def claim_pg(key: str) -> bool:
            async with pool.acquire() as connection, connection.transaction():
                return await connection.execute(
                    "INSERT INTO bench_claim (key) VALUES ($1) ON CONFLICT DO NOTHING", key) == "INSERT 0 1"
        return claim_pg
    import aiosqlite

    connection = await aiosqlite.connect(url.database or "")
    await connection.execute("PRAGMA journal_mode=WAL")
    await connection.execute("PRAGMA synchronous=NORMAL")
    await connection.execute(create)
    await connection.commit()
    lock = asyncio.Lock()  # one writer at a time, as on any SQLite connection

    async def claim_sqlite(key: str) -> bool:
        async with lock:
            cursor = await connection.execute("INSERT OR IGNORE INTO bench_claim (key) VALUES (?)", (key,))
            await connection.commit()
            return cursor.rowcount == 1
    return claim_sqlite


# ---- the load ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    openid: str
    text: str
    msg_id: int


def messages(total: int, round_tag: str) -> list[list[Message]]:
    """Per user, their messages in order; every user and message id is new in each round."""
    from handlers.validation import make_id_number

    users: list[list[Message]] = []
    msg_id = int(time.time() * 1000) * 1000
    for n in range((total + 3) // 4):
        script = SCRIPTS[n % len(SCRIPTS)]
        id_number = make_id_number(f"110101{1960 + n % 40}0307{n % 1000:03d}")
        user = []
        for text in script:
            msg_id += 1
            user.append(Message(f"o_{round_tag}_{n}", id_number if text == "<id>" else text, msg_id))
        users.append(user)
    flat = sum(len(u) for u in users)
    if flat > total:
        users[-1] = users[-1][: len(users[-1]) - (flat - total)]
    return users


def signed(message: Message) -> tuple[dict[str, str], bytes]:
    timestamp, nonce = str(int(time.time())), str(random.randrange(10**9))
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    xml = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{message.openid}]]>"
           f"</FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           f"<Content><![CDATA[{message.text}]]></Content><MsgId>{message.msg_id}</MsgId></xml>")
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}, xml.encode()


@dataclass
class Result:
    seconds: float
    latencies: list[float]
    errors: int
    cpu_seconds: float = 0.0  # the server process's CPU during the load (every thread)

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / max(len(self.latencies), 1)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(port: int, users: list[list[Message]], concurrency: int) -> Result:
    queue: asyncio.Queue[list[Message]] = asyncio.Queue()
    for user in users:
        queue.put_nowait(user)
    latencies: list[float] = []
    errors = 0
    url = f"http://127.0.0.1:{port}/wechat"

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            for message in queue.get_nowait():
                params, body = signed(message)
                began = time.perf_counter()
                async with session.post(url, params=params, data=body) as response:
                    text = await response.text()
                latencies.append(time.perf_counter() - began)
                if response.status != 200 or "<xml>" not in text:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return Result(time.perf_counter() - began, latencies, errors)


# ---- the servers ------------------------------------------------------------------------------------
def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_ready(port: int, proc: subprocess.Popen[bytes], within_seconds: float = 180) -> None:
    deadline = time.monotonic() + within_seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# the engine's turn replaced by a canned menu (--stub-core): what remains is the channel's own work
STUB_CORE = """
from handlers.engine import Engine, Handled
from handlers.messages import Choice, Reply
_STUB = Reply(text="你好！我是志愿助手。请选择：", choices=[Choice(f"选项 {n}", str(n)) for n in range(1, 7)])
async def _stub_delivery(self, inbound):
    return Handled([_STUB])
Engine.handle_delivery = _stub_delivery
"""


def start_server(kind: str, port: int, *, database_url: str, source: Path, data_dir: Path,
                 profile: Path | None = None, stub_core: bool = False) -> subprocess.Popen[bytes]:
    if kind == "bare":
        return subprocess.Popen([sys.executable, __file__, "--bare", str(port)])
    if kind == "bare+db":
        return subprocess.Popen([sys.executable, __file__, "--bare", str(port), "--bare-db", database_url])
    env = {**os.environ, "DATABASE_URL": database_url, "WECHAT_TOKEN": TOKEN, "LOG_LEVEL": "WARNING",
           "ID_ENCRYPTION_KEY": "bench-key-0123456789abcdef", "SCHEDULER_LOCK_FILE": str(data_dir / "lock"),
           "TELEGRAM_BOT_TOKEN": "", "WECHAT_APP_ID": "", "WECHAT_APP_SECRET": ""}
    code = f"import sys; sys.path.insert(0, {str(source)!r}); from bot.cli import main\n"
    if stub_core:
        code += STUB_CORE
    if profile is None:
        code += "main()"
    else:  # cProfile of the main thread from SIGUSR1 to SIGUSR2 (the measured load), written when serve stops
        code += ("import cProfile, signal\nprofiler = cProfile.Profile()\n"
                 "signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())\n"
                 "signal.signal(signal.SIGUSR2, lambda *_: profiler.disable())\n"
                 f"try:\n    main()\nfinally:\n    profiler.dump_stats({str(profile)!r})")
    return subprocess.Popen([sys.executable, "-c", code, "serve", "--port", str(port)], env=env, cwd=data_dir)


async def measure(kind: str, users: list[list[Message]], warmup: list[list[Message]], args: argparse.Namespace,
                  database_url: str, data_dir: Path) -> Result:
    port = free_port()
    profile = args.profile if kind == "full" else None
    proc = start_server(kind, port, database_url=database_url, source=args.source, data_dir=data_dir,
                        profile=profile, stub_core=args.stub_core)
    try:
        await wait_ready(port, proc)
        await load(port, warmup, args.concurrency)  # first use of catalogs, statement caches, pool
        if profile is not None:
            proc.send_signal(signal.SIGUSR1)
        cpu_before = cpu_seconds(proc.pid)
        result = await load(port, users, args.concurrency)
        result.cpu_seconds = cpu_seconds(proc.pid) - cpu_before
        if profile is not None:
            proc.send_signal(signal.SIGUSR2)
        return result
    finally:
        stop_server(proc)


def print_profile(path: Path, *, requests: int, top: int = 25) -> None:
    """Python calls per request (a figure the machine's load does not move) and the top entries."""
    import pstats

    stats = pstats.Stats(str(path))
    print(f"  profile (main thread, measured load only): {stats.total_calls / requests:.0f} Python calls/request, "
          f"{stats.total_tt * 1000 / requests:.2f} ms/request; written to {path}")
    stats.sort_stats("tottime").print_stats(top)


# ---- the database -----------------------------------------------------------------------------------
async def prepare_database(url: str, source: Path = REPO) -> None:
    """Migrated by ``source``'s migrations (another checkout's serve must find its own schema), with an
    organization and a few upcoming activities for 活动 to list."""
    from bot.runtime import upgrade_schema
    from models import ActivityBase
    from models.db import create_engine, create_session_factory
    from services.activities import create_activity
    from services.people import get_or_create_organization

    engine = create_engine(url)
    try:
        if source == REPO:  # the default: no --source
            await upgrade_schema(engine)
        else:
            await asyncio.to_thread(migrate_checkout, source, url)
        async with create_session_factory(engine)() as session:
            org = await get_or_create_organization(session, name="花家地社区服务站")
            now = datetime.now(UTC)
            for day in range(1, 6):
                start = now + timedelta(days=day)
                await create_activity(session, data=ActivityBase(
                    title=f"社区活动 {day}", description="陪老人聊天、读报", category="elderly", place="幸福敬老院",
                    start_at=start, end_at=start + timedelta(hours=3), capacity=20, organization_id=org.id or 0,
                ), created_by=None, now=now)
            await session.commit()
    finally:
        await engine.dispose()



async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        pg_name = f"vb_bench_wechat_{os.getpid()}"
        if args.db == "postgresql":
            await pg_admin(f'CREATE DATABASE "{pg_name}"')
            url = make_url(PG_BASE).set(database=pg_name).render_as_string(hide_password=False)
        else:
            url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
        try:
            await prepare_database(url, args.source)
            print(f"WeChat: {args.requests} signed texts, {args.concurrency} in flight, {args.db}, "
                  f"serve from {args.source}{' (engine stubbed)' if args.stub_core else ''}; load average {os.getloadavg()[0]:.1f}")
            ratios, p99s, floor_ratios = [], [], []
            for round_no in range(1, args.rounds + 1):
                tag = uuid.uuid4().hex[:6]
                users, warmup = messages(args.requests, tag), messages(40, f"w{tag}")
                bare = await measure("bare", users, warmup, args, url, data_dir)
                floor = await measure("bare+db", users, warmup, args, url, data_dir) if args.with_db_floor else None
                full = await measure("full", users, warmup, args, url, data_dir)
                ratio = full.rate / bare.rate
                ratios.append(ratio)
                p99s.append(full.pct(0.99))
                for name, result in (("bare", bare), ("bare+db", floor), ("full", full)):
                    if result is None:
                        continue
                    print(f"  round {round_no} {name:7}: {result.rate:7.1f} req/s  p50 {result.pct(0.5):6.1f} ms  "
                          f"p99 {result.pct(0.99):6.1f} ms  server CPU {result.cpu_ms_per_request:5.2f} ms/req  "
                          f"errors {result.errors}")
                print(f"  round {round_no} full : bare = {ratio:.0%}"
                      + (f"; full : bare+db = {full.rate / floor.rate:.0%}, bare+db : bare = {floor.rate / bare.rate:.0%}"
                         if floor is not None else ""))
                if floor is not None:
                    floor_ratios.append(full.rate / floor.rate)
                if args.profile is not None:
                    print_profile(args.profile, requests=len(full.latencies))
            print(f"median full : bare = {statistics.median(ratios):.0%} (rounds: "
                  f"{', '.join(f'{r:.0%}' for r in ratios)}); full p99 median {statistics.median(p99s):.1f} ms; "
                  f"load average {os.getloadavg()[0]:.1f}")
            if floor_ratios:
                print(f"median full : bare+db = {statistics.median(floor_ratios):.0%} (rounds: "
                      f"{', '.join(f'{r:.0%}' for r in floor_ratios)})")
        finally:
            if args.db == "postgresql":
                await pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", type=Path, default=REPO, help="the checkout whose serve to start")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run the full server under cProfile (main thread) and write its stats here")
    parser.add_argument("--stub-core", action="store_true",
                        help="replace the engine's turn by a canned reply: the channel's own cost per request")
    parser.add_argument("--with-db-floor", action="store_true",
                        help="also measure bare+db: the bare endpoint plus one message-id claim and commit")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--bare-db", metavar="URL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.bare:
        run_bare(arguments.bare, arguments.bare_db)
    else:
        asyncio.run(main(arguments))
