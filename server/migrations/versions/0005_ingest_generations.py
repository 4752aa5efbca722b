"""ingestion generations, per-step trace ids

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:00:00.000000

* vector_store_files.generation and vector_stores.ingest_generation: each claim of an
  ingestion job takes the next generation of its store; the job's chunks carry it and
  only the row's current generation may finish the row (server/tools/ingestion.py).
* retrieval_traces.id is the model's tool-call id, which providers reuse across runs:
  its index is no longer unique.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=True))

    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ingest_generation", sa.Integer(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("retrieval_traces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrieval_traces_id"))
        batch_op.create_index(batch_op.f("ix_retrieval_traces_id"), ["id"], unique=False)


def downgrade() -> None:
    # Traces whose tool-call id repeats cannot go back under a unique index: keep the
    # first of each id.
    op.execute(
        "DELETE FROM retrieval_traces WHERE seq NOT IN "
        "(SELECT MIN(seq) FROM retrieval_traces GROUP BY id)"
    )
    with op.batch_alter_table("retrieval_traces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrieval_traces_id"))
        batch_op.create_index(batch_op.f("ix_retrieval_traces_id"), ["id"], unique=True)

    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.drop_column("ingest_generation")

    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.drop_column("generation")
