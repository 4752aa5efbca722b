"""model usage records

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00.000000

* model_usage: one row per finished model call (tokens, cost), summed per project,
  model and day by `assistd usage` and GET /admin/usage (server/observability/usage.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_usage",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("thread_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("model_usage", schema=None) as batch_op:
        batch_op.create_index("ix_model_usage_day_project", ["day", "project"], unique=False)
        batch_op.create_index("ix_model_usage_project_day", ["project", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_model_usage_project_day")
        batch_op.drop_index("ix_model_usage_day_project")
    op.drop_table("model_usage")
