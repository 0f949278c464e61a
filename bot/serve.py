"""``volunteer-bot serve``: the web app plus whatever channels are configured."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.app import create_app
from bot.config import Settings
from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def run_server(settings: Settings, *, host: str, port: int) -> None:
    runtime = await Runtime.start(settings)
    app = await create_app(runtime)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("serving on http://%s:%s (GET /healthz)", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await runtime.close()
