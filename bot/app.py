"""The aiohttp web app behind ``volunteer-bot serve``; channels add their routes to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import text

from bot.runtime import Runtime

RUNTIME_KEY = web.AppKey("runtime", Runtime)
ChannelSetup = Callable[[web.Application, Runtime], Awaitable[None]]


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    try:
        async with runtime.db.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # the health check reports, it never raises
        return web.json_response({"status": "error", "database": str(exc)[:200]}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def create_app(runtime: Runtime, *, channels: list[ChannelSetup] | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME_KEY] = runtime
    app.router.add_get("/healthz", healthz)
    for setup in channels or []:
        await setup(app, runtime)
    return app
