"""我的时长 for a volunteer with thousands of records: a correction knows its record's person

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26

我的时长's sums probed ``hour_correction`` once per record of the person (is a correction in effect?), so they
grew with a volunteer's history: 1,000 records, ~1.2 ms on PostgreSQL. With the record's person on the
correction (backfilled from ``hour_record``) and a partial index of the approved ones by person, the sums are
the records' hours as recorded (index-only, ``ix_hour_record_person_served``) plus what the person's few
corrections in effect change. The original record stays as it was (办法 Art 12-13).

``hour_record.person_id`` never changes (a person with hours is never merged into another), so the copy
cannot go stale.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPROVED = sa.text("status = 'approved'")


def upgrade() -> None:
    with op.batch_alter_table("hour_correction") as batch:  # SQLite: the foreign key needs the table remade
        batch.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_hour_correction_person_id", "person", ["person_id"], ["id"])
    op.execute("UPDATE hour_correction SET person_id = "
               "(SELECT hour_record.person_id FROM hour_record WHERE hour_record.id = hour_correction.record_id)")
    with op.batch_alter_table("hour_correction") as batch:
        batch.alter_column("person_id", existing_type=sa.Integer(), nullable=False)
        batch.create_index("ix_hour_correction_person_approved", ["person_id"], unique=False,
                           postgresql_include=["record_id", "hours"], postgresql_where=APPROVED,
                           sqlite_where=APPROVED)


def downgrade() -> None:
    with op.batch_alter_table("hour_correction") as batch:
        batch.drop_index("ix_hour_correction_person_approved")
        batch.drop_column("person_id")
