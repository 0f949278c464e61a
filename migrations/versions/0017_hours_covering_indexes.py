"""我的时长 at a million volunteers: the person's hour records and their corrections read from indexes alone

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-26

One person's records are scattered over ``hour_record`` (written as they serve, among everybody else's), so
summing them through ``ix_hour_record_person_served`` fetched one heap page per record, and each record's
correction probe one more page of ``hour_correction``: at 1M volunteers / 20M records, 40–50 pages not in
shared buffers, 5–25 ms. Both indexes keep their keys and gain, on PostgreSQL, the columns 我的时长 reads
(INCLUDE), so its sums and its newest records are index-only scans: a person's entries are adjacent in one
or two leaf pages. SQLite ignores INCLUDE (the indexes stay as they were).

``note`` fits in an index entry: it is a VARCHAR(500), at most 2,000 bytes, under btree's 2,704.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_INCLUDE = ["approved", "reviewed_at", "hours", "activity_id", "recorded_by", "source", "note"]
CORRECTION_INCLUDE = ["hours", "id"]


def _remake(table: str, name: str, columns: list[str], include: list[str]) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_index(name)
        batch.create_index(name, columns, unique=False, postgresql_include=include)


def upgrade() -> None:
    _remake("hour_record", "ix_hour_record_person_served", ["person_id", "served_on", "id"], RECORD_INCLUDE)
    _remake("hour_correction", "ix_hour_correction_record_status", ["record_id", "status"], CORRECTION_INCLUDE)


def downgrade() -> None:
    _remake("hour_correction", "ix_hour_correction_record_status", ["record_id", "status"], [])
    _remake("hour_record", "ix_hour_record_person_served", ["person_id", "served_on", "id"], [])
