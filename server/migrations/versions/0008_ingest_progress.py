"""ingestion progress and round-robin claims

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:00:00.000000

* vector_store_files.progress: how far an ingestion in progress is through its file
  (chunk_count and usage_bytes grow with it); reported as the file's `progress`.
* vector_stores.ingest_claimed_at: when one of the store's files was last claimed, so
  claims go round robin over projects and stores (server/tools/ingest_jobs.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.Float(), nullable=True))

    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ingest_claimed_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.drop_column("ingest_claimed_at")

    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.drop_column("progress")
