"""membership: the organization a volunteer belongs to; backfilled from the community they registered

Revision ID: 0015
Revises: 0016
Create Date: 2026-11-25

Each active volunteer whose registered area names an organization (the same rule that gives a
request its station: station words such as 服务站 stripped, one name containing the other, the
longest name winning) becomes a member of it. Volunteers whose area matches nothing stay without one.
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

from common.resources import load_json

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fold(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


def _match(organizations: list[tuple[int, str]], area: str | None) -> int | None:
    station_words = re.compile(load_json("requests.json")["patterns"]["station_words"])
    place = _fold(area)
    best: tuple[int, int] | None = None
    for org_id, name in organizations:
        core = station_words.sub("", _fold(name))
        if len(core) < 2 or len(place) < 2 or not (core in place or place in core):
            continue
        if best is None or len(core) > best[0]:
            best = (len(core), org_id)
    return best[1] if best else None


def upgrade() -> None:
    op.create_table(
        "membership",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("person_id"),
    )
    with op.batch_alter_table("membership") as batch:
        batch.create_index(batch.f("ix_membership_organization_id"), ["organization_id"], unique=False)

    connection = op.get_bind()
    organizations = [(int(i), str(n)) for i, n in connection.execute(sa.text("SELECT id, name FROM organization"))]
    if not organizations:
        return
    people = connection.execute(sa.text(
        "SELECT id, area FROM person WHERE status = 'active' AND area IS NOT NULL"))
    membership = sa.table("membership", sa.column("person_id", sa.Integer), sa.column("organization_id", sa.Integer),
                          sa.column("joined_at", sqlmodel.sql.sqltypes.UTCDateTime()))
    now = datetime.now(UTC)
    rows = [{"person_id": int(person_id), "organization_id": org_id, "joined_at": now}
            for person_id, area in people if (org_id := _match(organizations, area)) is not None]
    if rows:
        op.bulk_insert(membership, rows)


def downgrade() -> None:
    with op.batch_alter_table("membership") as batch:
        batch.drop_index(batch.f("ix_membership_organization_id"))
    op.drop_table("membership")
