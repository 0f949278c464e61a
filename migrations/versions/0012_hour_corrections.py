"""hour corrections: a volunteer asks, a coordinator decides; the original record is kept

Revision ID: 0012
Revises: 0015
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hour_correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("old_hours", sa.Float(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("decision_note", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["hour_record.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["requested_by"], ["person.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hour_correction") as batch:
        batch.create_index("ix_hour_correction_record_status", ["record_id", "status"], unique=False)
        batch.create_index("ix_hour_correction_organization_id", ["organization_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hour_correction") as batch:
        batch.drop_index("ix_hour_correction_organization_id")
        batch.drop_index("ix_hour_correction_record_status")
    op.drop_table("hour_correction")
