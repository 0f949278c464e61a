"""Signed WeChat text messages through the real /wechat endpoint on SQLite and PostgreSQL, beside bare
wechatpy (signature check + parse_message + TextReply render) in the same run.

    .venv/bin/python bench/bench_wechat.py [--requests 600] [--concurrency 8] [--postgres URL]

Prints requests/s, p50/p99 latency and the ratio endpoint : bare wechatpy. Each message has its own
MsgId (no dedupe hits); users rotate so dialog state and identities are real rows.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import create_app  # noqa: E402
from bot.channels.wechat import channel as wechat  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import Runtime, upgrade_schema  # noqa: E402
from handlers.engine import Engine  # noqa: E402
from models.db import create_engine, create_session_factory  # noqa: E402

TOKEN = "bench-token"
USERS = 50
TEXTS = ["帮助", "我的时长", "活动", "你好", "我想注册成为志愿者", "取消"]


def signed_query(timestamp: str, nonce: str) -> dict[str, str]:
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def message_xml(i: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[o_user_{i % USERS}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{TEXTS[i % len(TEXTS)]}]]></Content><MsgId>{10**15 + i}</MsgId></xml>")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_endpoint(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    engine = create_engine(url)
    await upgrade_schema(engine)
    settings = Settings(_env_file=None, database_url=url, wechat_token=TOKEN)  # type: ignore[call-arg]
    sessions = create_session_factory(engine)
    runtime = Runtime(settings=settings, db=engine, sessions=sessions, core=Engine(sessions, settings.core_options()))
    app = await create_app(runtime, channels=[wechat.setup])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint = f"http://127.0.0.1:{port}/wechat"
    latencies: list[float] = []
    counter = iter(range(requests + 30))
    failures = 0

    async def worker(http: aiohttp.ClientSession, record: bool, budget: int) -> None:
        nonlocal failures
        for _ in range(budget):
            i = next(counter, None)
            if i is None:
                return
            query = signed_query(str(int(time.time())), str(i))
            started = time.perf_counter()
            async with http.post(endpoint, params=query, data=message_xml(i).encode()) as response:
                body = await response.text()
            if response.status != 200 or not body.startswith("<xml>"):
                failures += 1
            if record:
                latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*[worker(http, False, 30 // concurrency + 1) for _ in range(concurrency)])  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*[worker(http, True, requests) for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
    await runner.cleanup()
    await engine.dispose()
    if failures:
        print(f"  !! {failures} request(s) without a text reply")
    return len(latencies) / elapsed, latencies


def run_bare(requests: int) -> tuple[float, list[float]]:
    from wechatpy import parse_message
    from wechatpy.replies import TextReply
    from wechatpy.utils import check_signature

    latencies = []
    started = time.perf_counter()
    for i in range(requests):
        t0 = time.perf_counter()
        query = signed_query(str(int(time.time())), str(i))
        check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
        message = parse_message(message_xml(i))
        TextReply(content="我是志愿助手，可以帮你……", message=message).render()
        latencies.append(time.perf_counter() - t0)
    return requests / (time.perf_counter() - started), latencies


async def create_pg_database(base: str) -> str:
    import asyncpg

    parsed = make_url(base)
    name = f"vb_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 database=parsed.database, password=parsed.password, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(base: str, url: str) -> None:
    import asyncpg

    parsed = make_url(base)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 database=parsed.database, password=parsed.password, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


def line(label: str, rate: float, latencies: list[float]) -> str:
    return (f"{label:<28} {rate:9.1f} req/s   p50 {statistics.median(latencies) * 1000:7.2f} ms   "
            f"p99 {percentile(latencies, 0.99) * 1000:7.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    bare_rate, bare_lat = run_bare(max(args.requests, 2000))
    print(f"{args.requests} signed text messages, concurrency {args.concurrency}, {USERS} users")
    print(line("bare wechatpy parse+reply", bare_rate, bare_lat))
    with tempfile.TemporaryDirectory() as tmp:
        rate, lat = await run_endpoint(f"sqlite+aiosqlite:///{tmp}/bench.db", args.requests, args.concurrency)
        print(line("endpoint, SQLite", rate, lat) + f"   = 1 : {bare_rate / rate:,.0f} of bare wechatpy")
    try:
        url = await create_pg_database(args.postgres)
    except Exception as exc:  # noqa: BLE001 - the bench reports and goes on
        print(f"endpoint, PostgreSQL: skipped ({exc.__class__.__name__}: {exc})")
        return
    try:
        rate, lat = await run_endpoint(url, args.requests, args.concurrency)
        print(line("endpoint, PostgreSQL", rate, lat) + f"   = 1 : {bare_rate / rate:,.0f} of bare wechatpy")
    finally:
        await drop_pg_database(args.postgres, url)


if __name__ == "__main__":
    asyncio.run(main())
