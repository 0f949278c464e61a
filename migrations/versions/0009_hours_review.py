"""hours an auditor trusts: self-reported hours wait for a coordinator's review; organizations own their days

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hour_record") as batch:
        batch.add_column(sa.Column("organization_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.create_foreign_key("fk_hour_record_organization_id", "organization", ["organization_id"], ["id"])
        batch.create_foreign_key("fk_hour_record_reviewed_by", "person", ["reviewed_by"], ["id"])
        batch.create_index("ix_hour_record_organization_id", ["organization_id"], unique=False)
    with op.batch_alter_table("observance") as batch:
        batch.add_column(sa.Column("organization_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_observance_organization_id", "organization", ["organization_id"], ["id"])
        batch.create_index("ix_observance_organization_id", ["organization_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("observance") as batch:
        batch.drop_index("ix_observance_organization_id")
        batch.drop_constraint("fk_observance_organization_id", type_="foreignkey")
        batch.drop_column("organization_id")
    with op.batch_alter_table("hour_record") as batch:
        batch.drop_index("ix_hour_record_organization_id")
        batch.drop_constraint("fk_hour_record_reviewed_by", type_="foreignkey")
        batch.drop_constraint("fk_hour_record_organization_id", type_="foreignkey")
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("organization_id")
