"""privacy and linking: birth year instead of birth date, a link code's claimant, wrong link codes

* ``person.birth_date`` (together with the masked ID number it gave the whole ID number away) becomes
  ``person.birth_year``; existing rows keep their year.
* ``link_code.claimant_identity_id``: the identity that entered the code, waiting for the owner's
  confirmation.
* ``link_failure``: one row per wrong link code an identity entered (the lockout counts them).
* ``inbound_seen.reply`` is stored encrypted from now on; replies stored in plain text before are
  emptied (a retry of such an old message gets no reply rather than personal data kept at rest).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _year_of_birth_date() -> sa.TextClause:
    if op.get_bind().dialect.name == "sqlite":
        return sa.text("UPDATE person SET birth_year = CAST(strftime('%Y', birth_date) AS INTEGER) "
                       "WHERE birth_date IS NOT NULL")
    return sa.text("UPDATE person SET birth_year = CAST(EXTRACT(YEAR FROM birth_date) AS INTEGER) "
                   "WHERE birth_date IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.add_column(sa.Column("birth_year", sa.Integer(), nullable=True))
    op.execute(_year_of_birth_date())
    with op.batch_alter_table("person") as batch:
        batch.drop_column("birth_date")

    with op.batch_alter_table("link_code") as batch:
        batch.add_column(sa.Column("claimant_identity_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_link_code_claimant_identity", "identity", ["claimant_identity_id"], ["id"])

    op.create_table(
        "link_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("identity_id", sa.Integer(), sa.ForeignKey("identity.id"), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_link_failure_identity_id", "link_failure", ["identity_id"])

    # an empty list, not NULL: NULL means "the first delivery is still working on it"
    op.execute(sa.text("UPDATE inbound_seen SET reply = '[]' WHERE reply IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_link_failure_identity_id", table_name="link_failure")
    op.drop_table("link_failure")
    with op.batch_alter_table("link_code") as batch:
        batch.drop_constraint("fk_link_code_claimant_identity", type_="foreignkey")
        batch.drop_column("claimant_identity_id")
    with op.batch_alter_table("person") as batch:
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.drop_column("birth_year")
