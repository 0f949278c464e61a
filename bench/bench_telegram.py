"""Telegram webhook throughput and latency: the full pipeline beside a bare aiogram echo, in one run.

Full pipeline: POST /telegram (secret checked, aiogram SimpleRequestHandler) → our Router → core
Engine (dedupe row, identity, dialog state, feature handler) → database → sendMessage to a local
fake Bot API. Bare echo: the same webhook handler and fake server with a one-handler Dispatcher
that answers ``message.answer(message.text)``. Latency of one update = from the POST until its
reply reached the fake Bot API. Each of ``--concurrency`` simulated users sends its next message
when the previous one was answered.

    .venv/bin/python bench/bench_telegram.py [--updates 1000] [--concurrency 16] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import ClientSession, TCPConnector, web
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import create_app  # noqa: E402
from bot.channels.telegram import channel as telegram  # noqa: E402
from bot.channels.telegram.sender import make_bot  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import Runtime, upgrade_schema  # noqa: E402
from models.db import create_engine  # noqa: E402
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramAPI, message_update  # noqa: E402

SECRET = "bench-secret"
TEXTS = ["/help", "/activities", "我的时长", "/mine"]  # each answered with exactly one message
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def echo_app(api: FakeTelegramAPI) -> tuple[web.Application, Bot]:
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    bot = make_bot(DEFAULT_TOKEN, api.base_url)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=SECRET).register(app, path="/telegram")
    return app, bot


async def drive(url: str, api: FakeTelegramAPI, *, updates: int, concurrency: int, first_user: int,
                update_ids: itertools.count) -> tuple[float, list[float]]:
    """Returns (seconds, latencies) for ``updates`` messages from ``concurrency`` users."""
    latencies: list[float] = []
    per_user = updates // concurrency
    connector = TCPConnector(limit=concurrency * 2)
    async with ClientSession(connector=connector) as http:
        async def user(user_id: int) -> None:
            delivered = len(api.sent(user_id))
            for n in range(per_user):
                update = message_update(next(update_ids), user_id=user_id, text=TEXTS[n % len(TEXTS)])
                started = time.perf_counter()
                async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                    assert resp.status == 200, resp.status
                # every turn of these texts answers with exactly one message
                delivered += 1
                await api.wait_for_sent(user_id, count=delivered, within=30)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(user(first_user + i) for i in range(concurrency)))
        return time.perf_counter() - started, latencies


async def admin_sql(url: str, sql: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 password=parsed.password, database=parsed.database, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def scratch_database(args: argparse.Namespace) -> str:
    """A throw-away PostgreSQL database for this run (dropped at the end)."""
    name = f"vb_bench_{os.getpid()}"
    await admin_sql(args.postgres_url, f'CREATE DATABASE "{name}"')
    return make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, seconds: float, latencies: list[float]) -> float:
    rate = len(latencies) / seconds
    print(f"{name:<28} {len(latencies):>6} updates  {rate:>8.1f} updates/s  "
          f"p50 {p(latencies, 0.50) * 1000:>7.1f} ms  p99 {p(latencies, 0.99) * 1000:>7.1f} ms  "
          f"mean {statistics.fmean(latencies) * 1000:>7.1f} ms")
    return rate


async def serve(app: web.Application) -> tuple[TestServer, str]:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, f"http://127.0.0.1:{server.port}/telegram"


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    update_ids = itertools.count(1)
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite+aiosqlite:///{tmp}/bench.db" if args.db == "sqlite" else await scratch_database(args)
        async with FakeTelegramAPI() as api:
            settings = Settings(_env_file=None, database_url=db_url, telegram_bot_token=DEFAULT_TOKEN,
                                telegram_api_base=api.base_url, telegram_webhook_url="https://bench.invalid/telegram",
                                telegram_webhook_secret=SECRET)
            if args.db != "sqlite":
                engine = create_engine(db_url)
                await upgrade_schema(engine)
                await engine.dispose()
            runtime = await Runtime.start(settings)
            full_server, full_url = await serve(await create_app(runtime, channels=[telegram.setup]))
            echo, echo_bot = await echo_app(api)
            echo_server, echo_url = await serve(echo)

            runs: list[tuple[str, Callable[[int], Awaitable[tuple[float, list[float]]]]]] = [
                ("bare aiogram echo", lambda first: drive(echo_url, api, updates=args.updates,
                                                          concurrency=args.concurrency, first_user=first,
                                                          update_ids=update_ids)),
                (f"full pipeline ({args.db})", lambda first: drive(full_url, api, updates=args.updates,
                                                                    concurrency=args.concurrency, first_user=first,
                                                                    update_ids=update_ids)),
            ]
            # warm-up (imports, connection pools, first identities), then the measured runs
            for _, run in runs:
                await run(10_000_000)
            print(f"{args.updates} updates per run, {args.concurrency} concurrent users, texts {TEXTS}")
            rates = {}
            for index, (name, run) in enumerate(runs):
                seconds, latencies = await run(20_000_000 + index * 1000)
                rates[name] = report(name, seconds, latencies)
            full, bare = rates[runs[1][0]], rates[runs[0][0]]
            print(f"ratio full/echo throughput: {full / bare:.2f} ({bare / full:.1f}x slower than a bare echo)")
            await full_server.close()
            await echo_server.close()
            await echo_bot.session.close()
            await runtime.close()
        if args.db != "sqlite":
            await admin_sql(args.postgres_url, f'DROP DATABASE IF EXISTS "{make_url(db_url).database}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    asyncio.run(main(parser.parse_args()))
