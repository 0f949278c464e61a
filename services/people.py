"""People, identities and roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Identity, Organization, Person, Role
from services.orgs import managed_org_ids, managed_subtree
from services.rows import Reads, fetch_rows


class PermissionDenied(Exception):
    """The person lacks the role an action needs."""


async def get_or_create_identity(
    session: AsyncSession, *, channel: str, external_id: str, now: datetime
) -> tuple[Identity, Person]:
    identity = (
        await session.exec(
            select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
        )
    ).first()
    if identity is None:
        return await create_identity(session, channel=channel, external_id=external_id, now=now)
    person = await session.get(Person, identity.person_id)
    assert person is not None
    return identity, person


async def create_identity(
    session: AsyncSession, *, channel: str, external_id: str, now: datetime, last_inbound_at: datetime | None = None
) -> tuple[Identity, Person]:
    """A first contact: a new person with this identity (or the one a concurrent first contact made)."""
    # a nested transaction so a concurrent first contact does not abort the caller's work
    try:
        async with session.begin_nested():
            person = Person(created_at=now)
            session.add(person)
            await session.flush()
            identity = Identity(channel=channel, external_id=external_id, person_id=person.id, created_at=now,
                                last_inbound_at=last_inbound_at)
            session.add(identity)
            await session.flush()
        return identity, person
    except IntegrityError:
        identity = (
            await session.exec(
                select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
            )
        ).one()
    found = await session.get(Person, identity.person_id)
    assert found is not None
    return identity, found


async def active_identities(session: AsyncSession, *, person_id: int) -> list[Identity]:
    rows = await session.exec(
        select(Identity).where(Identity.person_id == person_id, Identity.active == True)  # noqa: E712
    )
    return list(rows)


async def get_or_create_organization(session: AsyncSession, *, name: str, kind: str = "station",
                                     parent_id: int | None = None) -> Organization:
    org = (await session.exec(select(Organization).where(Organization.name == name))).first()
    if org is None:
        org = Organization(name=name, kind=kind, parent_id=parent_id)
        session.add(org)
        await session.flush()
    return org


async def grant_role(session: AsyncSession, *, person_id: int, role: str,
                     organization_id: int | None) -> Role:
    if role not in ("admin", "coordinator"):
        raise ValueError(f"unknown role {role!r}")
    if role == "coordinator" and organization_id is None:
        raise ValueError("a coordinator role needs an organization")
    existing = (
        await session.exec(
            select(Role).where(
                Role.person_id == person_id, Role.role == role, Role.organization_id == organization_id
            )
        )
    ).first()
    if existing:
        return existing
    row = Role(person_id=person_id, role=role, organization_id=organization_id)
    session.add(row)
    await session.flush()
    return row


async def revoke_role(session: AsyncSession, *, person_id: int, role: str, organization_id: int | None) -> bool:
    rows = list(
        await session.exec(
            select(Role).where(
                Role.person_id == person_id, Role.role == role, Role.organization_id == organization_id
            )
        )
    )
    for row in rows:
        await session.delete(row)
    return bool(rows)


@dataclass(frozen=True, slots=True)
class Roles:
    """A person's roles: admin, and the organizations they coordinate."""

    admin: bool
    coordinates: frozenset[int]


NO_ROLES = Roles(admin=False, coordinates=frozenset())
_ROLES = select(Role.role, Role.organization_id).where(Role.person_id == bindparam("person_id"))  # built once


async def roles_of(session: Reads, *, person_id: int) -> Roles:
    """Every role of the person in one query (the menu and role checks of a turn share it): rows on the
    driver, so a coordinator's 帮助 or 活动 opens no session for them."""
    rows = await fetch_rows(session, _ROLES, {"person_id": person_id})
    return Roles(admin=any(role == "admin" for role, _org in rows),
                 coordinates=frozenset(org for role, org in rows if role == "coordinator" and org is not None))


async def is_admin(session: AsyncSession, *, person_id: int, bootstrap: bool = False) -> bool:
    """``bootstrap`` is True when one of the person's identities is listed in the ADMINS setting."""
    if bootstrap:
        return True
    row = (await session.exec(select(Role).where(Role.person_id == person_id, Role.role == "admin"))).first()
    return row is not None


async def managed_organizations(session: AsyncSession, *, person_id: int, admin: bool) -> list[Organization]:
    """Organizations this person manages: the ones they coordinate and every one below them (all for an admin)."""
    query = select(Organization).order_by(Organization.id)
    if not admin:
        query = query.where(col(Organization.id).in_(managed_subtree(person_id)))
    return list(await session.exec(query))


async def require_manager(session: AsyncSession, *, person_id: int, admin: bool, organization_id: int) -> None:
    """PermissionDenied unless the person is an admin or coordinates the organization or one above it."""
    if admin:
        return
    if organization_id not in await managed_org_ids(session, person_id=person_id):
        raise PermissionDenied(f"person {person_id} does not manage organization {organization_id}")
