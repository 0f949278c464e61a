"""What every page of the web console shares: templates, texts, the signed-in person, CSRF, paging.

A page handler is wrapped by :func:`page`: it opens one database session, finds the session cookie's
person and the organizations they manage (``services.people.managed_organizations``, the chat's
rule), refuses a POST without the session's CSRF token, and commits after a POST.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime import Runtime
from bot.web.texts import FLASH, TEXTS
from common.i18n import Msg, Text, render
from common.lang import normalize_language
from models import Identity, Organization, Person
from services.people import managed_organizations, roles_of
from services.web_auth import active_session, csrf_ok, csrf_token

HERE = Path(__file__).resolve().parent
COOKIE = "vb_session"
RUNTIME = web.AppKey("web_runtime", Runtime)
TEMPLATES = web.AppKey("web_templates", jinja2.Environment)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=jinja2.select_autoescape(("html", "svg"), default=True),
                             trim_blocks=True, lstrip_blocks=True)
    return env


class Texts:
    """``T.key`` / ``T("key", n=1)`` in templates: a text of :mod:`bot.web.texts` in the page's language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getattr__(self, key: str) -> str:
        if key not in TEXTS:
            raise AttributeError(key)
        return render(TEXTS[key], self.lang)

    def __getitem__(self, key: str) -> str:
        return render(TEXTS[key], self.lang)

    def __call__(self, key: str, **params: Any) -> str:
        return render(Msg(TEXTS[key].msgid, params), self.lang)

    def text(self, value: Text) -> str:
        return render(value, self.lang)


@dataclass
class WebUser:
    person: Person
    admin: bool
    organizations: list[Organization]
    token: str
    csrf: str
    lang: str

    @property
    def org_ids(self) -> list[int]:
        return [o.id for o in self.organizations if o.id is not None]

    @property
    def request_scope(self) -> list[int] | None:
        """Whose residents' requests: the managed stations', or (an admin) all, those of no station too."""
        return None if self.admin else self.org_ids


@dataclass
class Ctx:
    """One request of a signed-in manager: the database session, who they are, the clock."""

    request: web.Request
    runtime: Runtime
    session: AsyncSession
    user: WebUser
    now: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.runtime.settings.timezone)

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.tz).replace(tzinfo=None)

    def to_utc(self, local_value: datetime) -> datetime:
        return local_value.replace(tzinfo=self.tz).astimezone(UTC)

    @property
    def today(self) -> date:
        return self.local(self.now).date()

    def render(self, template: str, **values: Any) -> web.Response:
        env = self.request.app[TEMPLATES]
        body = env.get_template(template).render(
            T=Texts(self.user.lang), user=self.user, csrf=self.user.csrf, now=self.now, ctx=self,
            fmt=lambda v: f"{self.local(v):%Y-%m-%d %H:%M}" if v is not None else "",
            T_ok=FLASH, query=self.request.query, path=self.request.path, with_query=self.with_query, **values)
        return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})

    def render_text(self, value: Text) -> str:
        return render(value, self.user.lang)

    def with_query(self, **changes: Any) -> str:
        """This page's URL with some query parameters changed (sorting, paging, filters)."""
        params = {k: v for k, v in self.request.query.items()}
        for key, value in changes.items():
            if value is None or value == "":
                params.pop(key, None)
            else:
                params[key] = str(value)
        return self.request.path + ("?" + urlencode(params) if params else "")


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


def plain_page(request: web.Request, key: str, *, status: int, lang: str = "zh-Hans") -> web.Response:
    """A page with one message and no navigation (signed out, link used or expired, refused)."""
    body = request.app[TEMPLATES].get_template("message.html").render(T=Texts(lang), lang=lang,
                                                                      message=getattr(Texts(lang), key))
    return web.Response(text=body, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})


async def is_admin(session: AsyncSession, runtime: Runtime, person_id: int) -> bool:
    """An admin by role, or because one of the person's identities is in ADMINS (as in the chat)."""
    if (await roles_of(session, person_id=person_id)).admin:
        return True
    admins = set(runtime.settings.admins)
    if not admins:
        return False
    rows = await session.exec(select(Identity.channel, Identity.external_id).where(col(Identity.person_id) == person_id))
    return any(f"{channel}:{external}" in admins for channel, external in rows)


def page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Signed in, managing at least one organization, and for a POST the session's CSRF token."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        now = runtime.core.clock()
        token = request.cookies.get(COOKIE, "")
        async with runtime.sessions() as session:
            row = await active_session(session, token=token, now=now)
            if row is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther("/admin/signin")
                return plain_page(request, "signed_out", status=403)
            person = await session.get(Person, row.person_id)
            if person is None:
                return plain_page(request, "forbidden", status=403)
            admin = await is_admin(session, runtime, row.person_id)
            orgs = await managed_organizations(session, person_id=row.person_id, admin=admin)
            lang = normalize_language(person.language) if person.language else "zh-Hans"
            secret = runtime.settings.id_encryption_key
            if not orgs:
                return plain_page(request, "forbidden", status=403, lang=lang)
            if request.method == "POST":
                form = await request.post()
                if not csrf_ok(token, str(form.get("csrf", "")), secret=secret):
                    return plain_page(request, "csrf_failed", status=403, lang=lang)
            user = WebUser(person=person, admin=admin, organizations=orgs, token=token,
                           csrf=csrf_token(token, secret=secret), lang=lang or "zh-Hans")
            ctx = Ctx(request=request, runtime=runtime, session=session, user=user, now=now)
            try:
                response = await handler(ctx)
            except web.HTTPRedirection:  # a POST's work is done: it answers with a redirect
                if request.method == "POST":
                    await session.commit()
                raise
            if request.method == "POST":
                await session.commit()
            return response

    return wrapped


# ---- query parameters ----------------------------------------------------------------------------
PAGE_SIZE = 25


def int_param(request: web.Request, name: str, default: int = 0, *, minimum: int = 0, maximum: int = 10**9) -> int:
    raw = request.query.get(name, "")
    return min(max(int(raw), minimum), maximum) if raw.isdigit() and len(raw) < 10 else default


def date_param(request: web.Request, name: str, default: date) -> date:
    try:
        return date.fromisoformat(request.query.get(name, ""))
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class Paging:
    page: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def paging(request: web.Request, total: int = 0, size: int = PAGE_SIZE) -> Paging:
    return Paging(page=int_param(request, "page", 1, minimum=1), size=size, total=total)


def sort_param(request: web.Request, allowed: tuple[str, ...], default: str) -> tuple[str, bool]:
    """``?sort=key`` ascending, ``?sort=-key`` descending; unknown keys fall back to the default."""
    raw = request.query.get("sort", default)
    key = raw.lstrip("-")
    if key not in allowed:
        raw, key = default, default.lstrip("-")
    return key, raw.startswith("-")


def manages(ctx: Ctx, organization_id: int | None) -> bool:
    return organization_id is not None and organization_id in ctx.user.org_ids
