"""wechat: seen callback nonces (replay protection) and messages answered late

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_nonce",
        sa.Column("nonce_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce_key"),
    )
    with op.batch_alter_table("wechat_nonce", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wechat_nonce_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "wechat_late_answer",
        sa.Column("message_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_key"),
    )
    with op.batch_alter_table("wechat_late_answer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wechat_late_answer_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wechat_late_answer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wechat_late_answer_created_at"))
    op.drop_table("wechat_late_answer")
    with op.batch_alter_table("wechat_nonce", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wechat_nonce_expires_at"))
    op.drop_table("wechat_nonce")
