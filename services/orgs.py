"""The organization tree (center → station → team) and membership.

A coordinator of an organization manages it and everything below it: :func:`managed_org_ids` is the
one place that says so (a recursive CTE, the same SQL on SQLite and PostgreSQL). A volunteer belongs
to at most one organization (:class:`models.membership.Membership`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.selectable import CTE
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.pinyin import pinyin_matches
from common.resources import load_json
from models import Organization, Role
from models.membership import Membership
from services.rows import Reads, fetch_rows


# ---- the tree -------------------------------------------------------------------------------------
def subtree(roots: sa.ColumnElement | sa.Select | list[int], name: str = "org_subtree") -> CTE:
    """The ids (column ``id``) of ``roots`` and every organization below them.

    UNION (not UNION ALL) so that a cycle in ``parent_id`` ends the recursion instead of looping.
    """
    base = sa.select(col(Organization.id).label("id")).where(col(Organization.id).in_(roots))
    tree = base.cte(name, recursive=True)
    below = sa.select(col(Organization.id)).join(tree, col(Organization.parent_id) == tree.c.id)
    return tree.union(below)


def coordinated(person_id: int) -> sa.Select:
    """The organizations a person coordinates directly (a role row each)."""
    return sa.select(col(Role.organization_id)).where(col(Role.person_id) == person_id,
                                                      col(Role.role) == "coordinator")


def managed_subtree(person_id: int) -> sa.Select:
    """ids of the organizations this person coordinates and of all their descendants (a subquery)."""
    tree = subtree(coordinated(person_id))
    return sa.select(tree.c.id)


async def managed_org_ids(session: AsyncSession, *, person_id: int) -> set[int]:
    """Every organization a coordinator manages: the ones they coordinate and all below them."""
    return {int(org_id) for org_id in (await session.exec(managed_subtree(person_id))).scalars()}


async def descendant_ids(session: AsyncSession, *, organization_id: int) -> set[int]:
    """The organization and every organization below it."""
    tree = subtree([organization_id])
    return {int(org_id) for org_id in (await session.exec(sa.select(tree.c.id))).scalars()}


@dataclass(frozen=True, slots=True)
class TreeRow:
    organization: Organization
    depth: int
    members: int


async def org_tree(session: AsyncSession) -> list[TreeRow]:
    """Every organization in tree order (children under their parent, oldest first), with member counts."""
    orgs = await all_organizations(session)
    counts = {int(org): int(n) for org, n in await session.exec(
        sa.select(col(Membership.organization_id), sa.func.count()).group_by(col(Membership.organization_id)))}
    ids = {org.id for org in orgs}
    children: dict[int | None, list[Organization]] = {}
    for org in orgs:
        parent = org.parent_id if org.parent_id in ids and org.parent_id != org.id else None
        children.setdefault(parent, []).append(org)
    rows: list[TreeRow] = []
    seen: set[int] = set()

    def walk(parent: int | None, depth: int) -> None:
        for org in children.get(parent, []):
            if org.id in seen:
                continue
            assert org.id is not None
            seen.add(org.id)
            rows.append(TreeRow(org, depth, counts.get(org.id, 0)))
            walk(org.id, depth + 1)

    walk(None, 0)
    for org in orgs:  # a cycle in parent_id: shown at the top rather than lost
        if org.id not in seen:
            walk(org.parent_id, 0)
    return rows


async def find_organization(session: AsyncSession, *, name: str) -> Organization | None:
    return (await session.exec(select(Organization).where(Organization.name == name.strip()))).first()


async def close_names(session: AsyncSession, *, name: str, limit: int = 5) -> list[str]:
    """Existing organization names that look like ``name`` (a typo, a missing 社区 or 服务站)."""
    names = list(await session.exec(select(Organization.name)))
    wanted = name.strip()
    core = station_core(wanted)
    contains = [n for n in names if len(core) >= 2 and (core in station_core(n) or station_core(n) in core)
                and len(station_core(n)) >= 2]
    similar = difflib.get_close_matches(wanted, names, n=limit, cutoff=0.4)
    return list(dict.fromkeys([*contains, *similar]))[:limit]


# ---- matching a typed community to an organization ------------------------------------------------
@cache
def _station_words() -> re.Pattern[str]:
    return re.compile(load_json("requests.json")["patterns"]["station_words"])


def _fold(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


@lru_cache(maxsize=4096)
def station_core(name: str) -> str:
    """An organization name without its station word: 「花家地社区志愿服务站」 → 「花家地社区」.
    Cached: every community typed is matched against every organization's name."""
    return _station_words().sub("", _fold(name))


def matches(org_name: str, place: str | None) -> bool:
    core, typed = station_core(org_name), _fold(place)
    if len(core) < 2 or len(typed) < 2:
        return False
    # "Huajiadi" (typed in pinyin or English) is 花家地社区 too
    return (core in typed or typed in core or typed == _fold(org_name)
            or pinyin_matches(typed, core) or pinyin_matches(core, typed))


class _Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=_Named)


def best_match(organizations: Sequence[NamedT], place: str | None) -> NamedT | None:
    """The organization a community names; the longest name wins (「花家地社区站」 over 「花家地站」)."""
    found = [o for o in organizations if matches(o.name, place)]
    return max(found, key=lambda o: len(station_core(o.name))) if found else None


async def all_organizations(session: AsyncSession) -> list[Organization]:
    return list(await session.exec(select(Organization).order_by(col(Organization.id))))


@dataclass(frozen=True, slots=True)
class OrgChoice:
    """An organization as a volunteer chooses it (a button, a name on the profile): read as a row."""

    id: int
    name: str


_ORG_CHOICE = sa.select(col(Organization.id), col(Organization.name))
# statements built once (their SQL compiled once per dialect: services/rows.py)
_ALL_CHOICES = _ORG_CHOICE.order_by(col(Organization.id))
_CHOICE_BY_ID = _ORG_CHOICE.where(col(Organization.id) == sa.bindparam("id"))
_CHOICE_BY_NAME = _ORG_CHOICE.where(col(Organization.name) == sa.bindparam("name")).limit(1)
_MEMBERSHIP = _ORG_CHOICE.join(Membership, col(Membership.organization_id) == col(Organization.id)).where(
    col(Membership.person_id) == sa.bindparam("person_id"))


async def organization_choices(session: Reads) -> list[OrgChoice]:
    """Every organization's id and name, oldest first (no entity loaded: the buttons show nothing more)."""
    return [OrgChoice(org_id, name) for org_id, name in await fetch_rows(session, _ALL_CHOICES, {})]


async def organization_choice(session: Reads, *, organization_id: int) -> OrgChoice | None:
    rows = await fetch_rows(session, _CHOICE_BY_ID, {"id": organization_id})
    return OrgChoice(*rows[0]) if rows else None


async def match_organization(session: Reads, *, place: str | None) -> OrgChoice | None:
    """The organization of this name (as typed, spaces left out), else the one the community names."""
    rows = await fetch_rows(session, _CHOICE_BY_NAME, {"name": _fold(place)})
    return OrgChoice(*rows[0]) if rows else best_match(await organization_choices(session), place)


# ---- membership -----------------------------------------------------------------------------------
async def membership_of(session: Reads, *, person_id: int) -> OrgChoice | None:
    """The organization the person belongs to (one statement: the membership joined to its name)."""
    rows = await fetch_rows(session, _MEMBERSHIP, {"person_id": person_id})
    return OrgChoice(*rows[0]) if rows else None


async def set_membership(session: AsyncSession, *, person_id: int, organization_id: int | None,
                         now: datetime) -> None:
    """Join ``organization_id`` (leaving any other), or leave when None."""
    row = await session.get(Membership, person_id)
    if organization_id is None:
        if row is not None:
            await session.delete(row)
            await session.flush()
        return
    if await session.get(Organization, organization_id) is None:
        raise ValueError(f"no organization {organization_id}")
    if row is None:
        session.add(Membership(person_id=person_id, organization_id=organization_id, joined_at=now))
    elif row.organization_id != organization_id:
        row.organization_id = organization_id
        row.joined_at = now
        session.add(row)
    await session.flush()

