"""The web console (``/admin/…``) and the notice pages (``/n/…``): aiohttp + Jinja2, rendered on the server.

``setup(app, runtime)`` mounts every page on ``serve``'s web app. Each page lives in its own module
(``pages_*.py``) and registers its routes in a ``setup(app)``; new pages (corrections, observances,
the check-in poster) add a module and one line below.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.runtime import Runtime
from bot.web import (
    auth,
    notice,
    pages_activities,
    pages_activity_changes,
    pages_broadcasts,
    pages_corrections,
    pages_dashboard,
    pages_ledger,
    pages_observances,
    pages_poster,
    pages_requests,
    pages_volunteers,
)
from bot.web.core import RUNTIME, TEMPLATES, environment

STATIC = Path(__file__).resolve().parent / "static"
PAGES = (auth, pages_dashboard, pages_activities, pages_activity_changes, pages_poster, pages_ledger,
         pages_corrections, pages_volunteers, pages_requests, pages_broadcasts, pages_observances,
         notice)


@web.middleware
async def security_headers(request: web.Request, handler):  # noqa: ANN001, ANN201
    response = await handler(request)
    if request.path.startswith(("/admin", "/n/")):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
    return response


async def to_dashboard(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/admin/")


async def setup(app: web.Application, runtime: Runtime) -> None:
    app[RUNTIME] = runtime
    app[TEMPLATES] = environment()
    app.middlewares.append(security_headers)
    app.router.add_get("/admin", to_dashboard)
    app.router.add_static("/admin/static", STATIC, append_version=False)
    for module in PAGES:
        module.setup(app)
