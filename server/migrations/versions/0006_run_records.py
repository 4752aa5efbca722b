"""run records: the inspector's model-call log and run timeline

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 22:30:00.000000

* run_records: one row per model call (request as sent, raw answer, tokens, latency,
  cost), status change and batch of server-side tool executions of a run
  (server/inspector/recorder.py). Deleted with the thread, purged after the retention
  period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_records",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("run_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_records_id"), ["id"], unique=True)
        batch_op.create_index(batch_op.f("ix_run_records_thread_id"), ["thread_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_records_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_run_records_run_seq", ["run_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run_records", schema=None) as batch_op:
        batch_op.drop_index("ix_run_records_run_seq")
        batch_op.drop_index(batch_op.f("ix_run_records_created_at"))
        batch_op.drop_index(batch_op.f("ix_run_records_thread_id"))
        batch_op.drop_index(batch_op.f("ix_run_records_id"))

    op.drop_table("run_records")
