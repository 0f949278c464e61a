"""wechat: shared access token, reply pages, template-send reports

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_access_token",
        sa.Column("app_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("app_id"),
    )
    op.create_table(
        "wechat_reply_pages",
        sa.Column("openid", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("pages", sa.JSON(), nullable=False),
        sa.Column("last_message_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column("last_page", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("openid"),
    )
    op.create_table(
        "wechat_template_job",
        sa.Column("msg_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("openid", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("msg_id"),
    )
    with op.batch_alter_table("wechat_template_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wechat_template_job_openid"), ["openid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wechat_template_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wechat_template_job_openid"))
    op.drop_table("wechat_template_job")
    op.drop_table("wechat_reply_pages")
    op.drop_table("wechat_access_token")
