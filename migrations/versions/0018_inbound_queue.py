"""inbound queue: messages acknowledged under overload, handled by a background worker

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26

Under a burst a webhook channel answers at once (WeChat: ``success``) and keeps the message here instead
of asking the user to send it again; a worker runs its turn when the process has room and the reply
follows through the outbox. A retry of a queued message (same channel and message id) joins its row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("message_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("user_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("claimed_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "message_key", name="uq_inbound_queue_message"),
    )
    with op.batch_alter_table("inbound_queue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_queue_user_key"), ["user_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_queue_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbound_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_queue_created_at"))
        batch_op.drop_index(batch_op.f("ix_inbound_queue_user_key"))
    op.drop_table("inbound_queue")
