"""``volunteer-bot web login-link``: a one-time sign-in link to the web console for a coordinator or admin."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from bot.commands.common import fail, load_settings

web_app = typer.Typer(help="The web console (/admin).", no_args_is_help=True)


@web_app.command("login-link")
def login_link(
    channel: Annotated[str, typer.Option(help="The person's channel (console, wechat, telegram).")],
    user: Annotated[str, typer.Option(help="The person's user id on that channel.")],
) -> None:
    """Print a sign-in link valid 10 minutes, usable once (the person must be a coordinator or an admin)."""
    from sqlmodel import select

    from bot.runtime import Runtime
    from handlers.web_login import login_path
    from models import Identity
    from services.people import managed_organizations, roles_of
    from services.web_auth import create_login_link

    settings = load_settings()

    async def main() -> str:
        runtime = await Runtime.start(settings)
        try:
            async with runtime.sessions() as session:
                identity = (await session.exec(select(Identity).where(
                    Identity.channel == channel, Identity.external_id == user))).first()
                if identity is None:
                    fail(f"no {channel} user {user!r}: they must have written to the assistant, "
                         "or been granted a role with `volunteer-bot admin grant`")
                admin = f"{channel}:{user}" in settings.admins or (
                    await roles_of(session, person_id=identity.person_id)).admin
                if not await managed_organizations(session, person_id=identity.person_id, admin=admin):
                    fail(f"{channel}:{user} is neither a coordinator nor an admin")
                token = await create_login_link(session, person_id=identity.person_id, identity_id=identity.id,
                                                now=runtime.core.clock())
                await session.commit()
                return token
        finally:
            await runtime.close()

    token = asyncio.run(main())
    base = settings.public_base_url.rstrip("/") or f"http://{settings.host}:{settings.port}"
    typer.echo(base + login_path(token))
