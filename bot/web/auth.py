"""Signing in with a one-time link, signing out, and the page that says how to get a link."""

from __future__ import annotations

from aiohttp import web

from bot.web.core import COOKIE, RUNTIME, Ctx, page, plain_page
from services.web_auth import SESSION_TTL, end_session, purge_expired, redeem_login_link

REASONS = {"used": "link_used", "expired": "link_expired", "unknown": "link_unknown"}


def secure_cookies(request: web.Request) -> bool:
    return request.app[RUNTIME].settings.public_base_url.lower().startswith("https://")


async def login(request: web.Request) -> web.StreamResponse:
    """GET /admin/login/<token>: a valid, unused link opens a session and goes to the dashboard."""
    runtime = request.app[RUNTIME]
    token = request.match_info.get("token", "")
    now = runtime.core.clock()
    async with runtime.sessions() as session:
        redeemed = await redeem_login_link(session, token=token[:100], now=now)
        if redeemed.session_token is not None:
            await purge_expired(session, now=now)
        await session.commit()
    if redeemed.session_token is None:
        return plain_page(request, REASONS.get(redeemed.reason or "", "link_unknown"), status=410)
    response = web.HTTPSeeOther("/admin/")
    response.set_cookie(COOKIE, redeemed.session_token, max_age=int(SESSION_TTL.total_seconds()), path="/",
                        httponly=True, samesite="Lax", secure=secure_cookies(request))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token must not travel on in a Referer
    raise response


@page
async def logout(ctx: Ctx) -> web.StreamResponse:
    await end_session(ctx.session, token=ctx.user.token)
    response = web.HTTPSeeOther("/admin/signed-out")
    response.del_cookie(COOKIE, path="/")
    raise response


async def signin(request: web.Request) -> web.StreamResponse:
    return plain_page(request, "how_to_sign_in", status=401)


async def signed_out(request: web.Request) -> web.StreamResponse:
    return plain_page(request, "signed_out_done", status=200)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/login/{token}", login)
    app.router.add_post("/admin/logout", logout)
    app.router.add_get("/admin/signin", signin)
    app.router.add_get("/admin/signed-out", signed_out)
