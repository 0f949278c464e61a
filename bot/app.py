"""The aiohttp web app behind ``volunteer-bot serve``; channels add their routes to it."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import text

from bot.certificates import web as certificates
from bot.downloads import download_routes
from bot.metrics import CONTENT_TYPE
from bot.runtime import Runtime

log = logging.getLogger(__name__)
RUNTIME_KEY = web.AppKey("runtime", Runtime)
ChannelSetup = Callable[[web.Application, Runtime], Awaitable[None]]


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    try:
        async with runtime.db.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # the health check reports, it never raises
        return web.json_response({"status": "error", "database": str(exc)[:200]}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "pid": os.getpid()})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: this runtime's registry (all workers' under ``serve --workers``) + the outbox."""
    runtime = request.app[RUNTIME_KEY]
    try:
        body = await runtime.metrics.exposition(runtime.sessions)
    except Exception:  # the database is down: still show the process's own metrics
        log.exception("metrics: outbox counts unavailable")
        body = await runtime.metrics.exposition(None)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def create_app(runtime: Runtime, *, channels: list[ChannelSetup] | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME_KEY] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_routes(download_routes(runtime))  # /ledger.xlsx, /roster.csv …
    app.router.add_get("/metrics", metrics)
    certificates.setup(app, runtime.sessions, runtime.settings, runtime.core.clock)  # /verify/…, /certificate/…
    for setup in channels or []:
        await setup(app, runtime)
    return app
