"""vector stores and retrieval traces

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:37:56.479872
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "retrieval_traces",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("retrieval_traces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retrieval_traces_id"), ["id"], unique=True)
        batch_op.create_index(batch_op.f("ix_retrieval_traces_step_id"), ["step_id"], unique=False)

    op.create_table(
        "vector_store_file_batches",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("vector_store_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vector_store_file_batches_id"), ["id"], unique=True)

    op.create_table(
        "vector_store_files",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("vector_store_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("usage_bytes", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.Column("chunking_strategy", sa.JSON(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("batch_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vector_store_files_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_vector_store_files_id"), ["id"], unique=False)
        batch_op.create_index(
            "ix_vector_store_files_status_lease", ["status", "lease_expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_vector_store_files_store_seq", ["vector_store_id", "seq"], unique=False
        )
        batch_op.create_index(
            "ux_vector_store_files_store_file", ["vector_store_id", "id"], unique=True
        )

    op.create_table(
        "vector_stores",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("last_active_at", sa.Integer(), nullable=True),
        sa.Column("expires_after", sa.JSON(), nullable=True),
        sa.Column("expires_at", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("embedding_model", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vector_stores_id"), ["id"], unique=True)
        batch_op.create_index("ix_vector_stores_project_seq", ["project", "seq"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_stores_project_seq")
        batch_op.drop_index(batch_op.f("ix_vector_stores_id"))

    op.drop_table("vector_stores")
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.drop_index("ux_vector_store_files_store_file")
        batch_op.drop_index("ix_vector_store_files_store_seq")
        batch_op.drop_index("ix_vector_store_files_status_lease")
        batch_op.drop_index(batch_op.f("ix_vector_store_files_id"))
        batch_op.drop_index(batch_op.f("ix_vector_store_files_batch_id"))

    op.drop_table("vector_store_files")
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vector_store_file_batches_id"))

    op.drop_table("vector_store_file_batches")
    with op.batch_alter_table("retrieval_traces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrieval_traces_step_id"))
        batch_op.drop_index(batch_op.f("ix_retrieval_traces_id"))

    op.drop_table("retrieval_traces")
