"""``volunteer-bot serve``: the web app plus whatever channels are configured."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.app import ChannelSetup, create_app
from bot.channels.registry import enabled_channels
from bot.config import DEV_ENCRYPTION_KEY, Settings
from bot.runtime import Runtime
from bot.scheduler import setup as background_setup

log = logging.getLogger(__name__)

DB_ATTEMPTS = 8  # with the back-off below: about 90 s of retrying before giving up
DB_RETRY_DELAY = 1.0  # seconds before the second attempt; doubled after each failure …
DB_RETRY_MAX_DELAY = 30.0  # … up to this
# what an unreachable or refusing database raises while connecting (asyncpg's refused connection is
# an OSError, SQLAlchemy wraps driver errors in DBAPIError)
UNREACHABLE = (OSError, DBAPIError, TimeoutError)


class DatabaseUnavailable(RuntimeError):
    pass


def _reason(exc: BaseException) -> str:
    """One line: the driver's own message, not SQLAlchemy's wrapper with its links."""
    cause = getattr(exc, "orig", None) or exc
    text = " ".join(str(cause).split()) or cause.__class__.__name__
    return f"{cause.__class__.__name__}: {text[:200]}"


async def start_runtime(settings: Settings, *, attempts: int = DB_ATTEMPTS, delay: float = DB_RETRY_DELAY,
                        max_delay: float = DB_RETRY_MAX_DELAY,
                        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Runtime:
    """``Runtime.start`` retried with a capped exponential back-off while the database cannot be
    reached, one log line per failed attempt; ``DatabaseUnavailable`` (one line) when it gives up."""
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            return await Runtime.start(settings)
        except UNREACHABLE as exc:
            if attempt >= attempts:
                raise DatabaseUnavailable(
                    f"database {where} unreachable after {attempts} attempt(s), giving up: {_reason(exc)}") from None
            log.warning("database %s unreachable (attempt %d/%d: %s); retrying in %.1f s",
                        where, attempt, attempts, _reason(exc), delay)
        await sleep(delay)
        delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def freeze_start_up_objects() -> int:
    """Moves every object alive now into the collector's permanent generation; returns how many.

    Called once the app is set up (channels mounted, their start-up hooks run). The ~300k objects of
    start-up (modules, the ORM's mappings, catalogs, compiled statements) live as long as the process,
    yet every full collection under load walked them all: a stall of the event loop of 0.25–0.6 s while
    requests wait for their deadline. Start-up's garbage is collected first, so none of it is kept forever.
    Each ``serve --workers`` process runs this itself (they are spawned, not forked)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def channel_setups(settings: Settings) -> list[ChannelSetup]:
    """Every enabled channel of the registry mounts itself, then the background services."""
    setups: list[ChannelSetup] = [channel.mount for channel in enabled_channels(settings)]
    setups.append(background_setup)  # reminder scheduler + outbox drainers (one holder per deployment)
    return setups


async def run_server(settings: Settings, *, host: str, port: int, db_attempts: int = DB_ATTEMPTS,
                     db_retry_delay: float = DB_RETRY_DELAY, reuse_port: bool = False) -> None:
    if settings.id_encryption_key == DEV_ENCRYPTION_KEY:
        log.warning("ID_ENCRYPTION_KEY is the development default: set your own before storing real ID numbers")
    runtime = await start_runtime(settings, attempts=db_attempts, delay=db_retry_delay)
    app = await create_app(runtime, channels=channel_setups(settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    frozen = freeze_start_up_objects()  # before the first request: a full collection no longer walks them
    log.debug("%d start-up objects exempt from garbage collection", frozen)
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
