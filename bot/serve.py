"""``volunteer-bot serve``: the web app plus whatever channels are configured."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.app import ChannelSetup, create_app
from bot.channels.registry import enabled_channels
from bot.config import DEV_ENCRYPTION_KEY, Settings
from bot.runtime import Runtime
from bot.scheduler import setup as background_setup

log = logging.getLogger(__name__)


def channel_setups(settings: Settings) -> list[ChannelSetup]:
    """Every enabled channel of the registry mounts itself, then the background services."""
    setups: list[ChannelSetup] = [channel.mount for channel in enabled_channels(settings)]
    setups.append(background_setup)  # reminder scheduler + outbox drainers (one holder per deployment)
    return setups


async def run_server(settings: Settings, *, host: str, port: int, reuse_port: bool = False) -> None:
    if settings.id_encryption_key == DEV_ENCRYPTION_KEY:
        log.warning("ID_ENCRYPTION_KEY is the development default: set your own before storing real ID numbers")
    runtime = await Runtime.start(settings)
    app = await create_app(runtime, channels=channel_setups(settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)  # serve --workers: one port, N processes
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
