"""``volunteer-bot admin …`` (roles) and ``org …`` (organizations)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from bot.channels.registry import channel_names
from bot.commands.common import fail, load_settings

admin_app = typer.Typer(help="Roles: admins and coordinators.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations (center → station → team).", no_args_is_help=True)
CHANNEL_HELP = ", ".join(channel_names())


@admin_app.command("grant")
def admin_grant(
    role: Annotated[str, typer.Argument(help="admin or coordinator")],
    channel: Annotated[str, typer.Option(help=CHANNEL_HELP)],
    user: Annotated[str, typer.Option(help="The user's id on that channel.")],
    org: Annotated[str | None, typer.Option(help="Organization name (coordinators); it must exist.")] = None,
    create: Annotated[bool, typer.Option("--create", help="Create the organization when it does not exist.")] = False,
) -> None:
    """Grant a role, e.g. admin grant coordinator --channel telegram --user 123 --org "XX社区"."""
    asyncio.run(_change_role(role, channel, user, org, grant=True, create=create))


@admin_app.command("revoke")
def admin_revoke(
    role: Annotated[str, typer.Argument(help="admin or coordinator")],
    channel: Annotated[str, typer.Option()],
    user: Annotated[str, typer.Option()],
    org: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Take a role away."""
    asyncio.run(_change_role(role, channel, user, org, grant=False))


async def _change_role(role: str, channel: str, user: str, org_name: str | None, *, grant: bool,
                       create: bool = False) -> None:
    from bot.runtime import Runtime
    from models import utcnow
    from services.orgs import find_organization
    from services.people import get_or_create_identity, get_or_create_organization, grant_role, revoke_role

    if role not in ("admin", "coordinator"):
        fail("role must be admin or coordinator")
    if role == "coordinator" and not org_name:
        fail("a coordinator needs --org")
    runtime = await Runtime.start(load_settings())
    try:
        async with runtime.sessions() as session:
            _, person = await get_or_create_identity(session, channel=channel, external_id=user, now=utcnow())
            org_id = None
            if org_name:
                found = await find_organization(session, name=org_name)
                if found is None and grant and create:
                    found = await get_or_create_organization(session, name=org_name.strip())
                    typer.echo(f"created organization #{found.id} {found.name}")
                if found is None:
                    found = await _existing(session, org_name,
                                            hint="add --create to create it" if grant else "nothing revoked")
                org_id = found.id
            if grant:
                await grant_role(session, person_id=person.id, role=role, organization_id=org_id)
            elif not await revoke_role(session, person_id=person.id, role=role, organization_id=org_id):
                fail("that role was not granted")
            await session.commit()
    finally:
        await runtime.close()
    where = f" @ {org_name}" if org_name else ""
    typer.echo(f"{'granted' if grant else 'revoked'} {role}{where} for {channel}:{user}")


async def _existing(session, name: str, *, hint: str):  # noqa: ANN001, ANN202 - imports stay lazy
    """The organization of that exact name, or exit naming the close ones (a typo must not become a new one)."""
    from services.orgs import close_names, find_organization

    found = await find_organization(session, name=name)
    if found is None:
        close = await close_names(session, name=name)
        did_you_mean = f"; did you mean: {', '.join(close)}?" if close else ""
        fail(f"no organization named {name!r}{did_you_mean} (see `org list`; {hint})")
    return found


@org_app.command("add")
def org_add(
    name: Annotated[str, typer.Argument()],
    kind: Annotated[str, typer.Option(help="center, station or team")] = "station",
    parent: Annotated[str | None, typer.Option(help="Parent organization name.")] = None,
) -> None:
    """Add an organization."""
    from bot.runtime import Runtime
    from services.people import get_or_create_organization

    if kind not in ("center", "station", "team"):
        fail("kind must be center, station or team")

    async def main() -> None:
        runtime = await Runtime.start(load_settings())
        try:
            async with runtime.sessions() as session:
                parent_id = None
                if parent:
                    parent_id = (await _existing(session, parent, hint="nothing added")).id
                org = await get_or_create_organization(session, name=name, kind=kind, parent_id=parent_id)
                await session.commit()
                typer.echo(f"organization #{org.id} {org.name} ({org.kind})")
        finally:
            await runtime.close()

    asyncio.run(main())


@org_app.command("list")
def org_list() -> None:
    """Print the organization tree: ids, kinds and member counts, children indented under their parent."""
    from bot.runtime import Runtime
    from services.orgs import org_tree

    async def main() -> None:
        runtime = await Runtime.start(load_settings())
        try:
            async with runtime.sessions() as session:
                rows = await org_tree(session)
        finally:
            await runtime.close()
        if not rows:
            typer.echo("no organizations yet (add one: org add NAME [--kind center] [--parent NAME])")
        for row in rows:
            org = row.organization
            typer.echo(f"{'  ' * row.depth}#{org.id} {org.name} ({org.kind}) · {row.members} members")

    asyncio.run(main())
