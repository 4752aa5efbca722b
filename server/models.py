"""Database tables (SQLModel). The API shapes live in server/protocol; these are storage.

Every row carries its `project`, so isolation is a WHERE clause on every query, and an
integer `seq` that orders rows stably for cursor pagination (many objects share one
created_at second).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, Table
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Field, SQLModel


def _json(name: str | None = None, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(name, JSON, nullable=nullable))


class Assistant(SQLModel, table=True):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_project_seq", "project", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    created_at: int
    name: str | None = None
    description: str | None = None
    model: str
    instructions: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    tool_resources: dict[str, Any] | None = _json()
    meta: dict[str, str] | None = _json("metadata")
    temperature: float | None = None
    top_p: float | None = None
    response_format: Any = _json()
    reasoning_effort: str | None = None


class Thread(SQLModel, table=True):
    __tablename__ = "threads"

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128, index=True)
    created_at: int
    tool_resources: dict[str, Any] | None = _json()
    meta: dict[str, str] | None = _json("metadata")
    # The one run allowed to be active on this thread. Claimed with a conditional UPDATE,
    # so the database itself (not process memory) enforces one active run per thread.
    active_run_id: str | None = Field(default=None, max_length=64)


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_thread_seq", "thread_id", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    thread_id: str = Field(max_length=64)
    created_at: int
    role: str
    content: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    attachments: list[dict[str, Any]] | None = _json()
    assistant_id: str | None = None
    run_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = "completed"
    incomplete_details: dict[str, Any] | None = _json()
    completed_at: int | None = None
    incomplete_at: int | None = None
    meta: dict[str, str] | None = _json("metadata")


class StoredFile(SQLModel, table=True):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_project_seq", "project", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    created_at: int
    filename: str
    bytes: int
    purpose: str
    sha256: str = Field(max_length=64, index=True)
    status: str = "processed"
    expires_at: int | None = None


class Run(SQLModel, table=True):
    """A run is also its own durable job: `lease_owner`/`lease_expires_at` say which
    worker is advancing it and until when; an expired lease means that worker died."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_thread_seq", "thread_id", "seq"),
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    thread_id: str = Field(max_length=64)
    assistant_id: str = Field(max_length=64)
    created_at: int
    status: str = "queued"
    required_action: dict[str, Any] | None = _json()
    last_error: dict[str, Any] | None = _json()
    expires_at: int | None = None
    started_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    incomplete_details: dict[str, Any] | None = _json()
    model: str
    instructions: str | None = None
    additional_instructions: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    meta: dict[str, str] | None = _json("metadata")
    usage: dict[str, int] | None = _json()
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: dict[str, Any] | None = _json()
    tool_choice: Any = _json()
    parallel_tool_calls: bool = True
    response_format: Any = _json()
    reasoning_effort: str | None = None
    # Messages that existed when the run was created: the run's view of the thread.
    context_seq: int = 0
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: float | None = None


class RunStep(SQLModel, table=True):
    __tablename__ = "run_steps"
    __table_args__ = (Index("ix_run_steps_run_seq", "run_id", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    run_id: str = Field(max_length=64)
    thread_id: str = Field(max_length=64)
    assistant_id: str = Field(max_length=64)
    created_at: int
    type: str
    status: str = "in_progress"
    step_details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    last_error: dict[str, Any] | None = _json()
    expired_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    meta: dict[str, str] | None = _json("metadata")
    usage: dict[str, int] | None = _json()


class VectorStore(SQLModel, table=True):
    """A named set of indexed files. Counts, size and status are derived from its files
    (one GROUP BY) rather than stored, so replicas never disagree about them."""

    __tablename__ = "vector_stores"
    __table_args__ = (Index("ix_vector_stores_project_seq", "project", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    created_at: int
    name: str = ""
    last_active_at: int | None = None
    expires_after: dict[str, Any] | None = _json()
    expires_at: int | None = None
    meta: dict[str, str] | None = _json("metadata")
    # Extension: the embedding model every file of this store is embedded with.
    embedding_model: str = Field(max_length=256)
    # Counter behind VectorStoreFile.generation: bumped each time one of its files is
    # claimed for ingestion, so generations only grow within a store.
    ingest_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # When one of its files was last claimed for ingestion: claims go round robin, so the
    # store (and the project) served longest ago goes first among equals.
    ingest_claimed_at: float | None = None


class VectorStoreFile(SQLModel, table=True):
    """A file attached to a store; `id` is the file's id, as in the API. The row is also
    the ingestion job: a worker leases it while parsing, chunking and embedding."""

    __tablename__ = "vector_store_files"
    __table_args__ = (
        Index("ux_vector_store_files_store_file", "vector_store_id", "id", unique=True),
        Index("ix_vector_store_files_store_seq", "vector_store_id", "seq"),
        Index("ix_vector_store_files_status_lease", "status", "lease_expires_at"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=64, index=True)
    vector_store_id: str = Field(max_length=64)
    project: str = Field(max_length=128)
    created_at: int
    status: str = "in_progress"
    usage_bytes: int = 0
    chunk_count: int = 0
    last_error: dict[str, Any] | None = _json()
    chunking_strategy: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    attributes: dict[str, Any] | None = _json()
    batch_id: str | None = Field(default=None, max_length=64, index=True)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: float | None = None
    # The ingestion attempt that may finish this row: set from the store's counter when a
    # worker claims it, cleared when the file is queued again. Its chunks carry it, so an
    # attempt that lost the row removes only its own chunks (server/tools/ingestion.py).
    generation: int | None = None
    # How far the ingestion in progress is through the file (0..1: bytes of a text file,
    # pages of a PDF); chunk_count and usage_bytes grow with it.
    progress: float | None = None


class VectorStoreFileBatch(SQLModel, table=True):
    __tablename__ = "vector_store_file_batches"

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    vector_store_id: str = Field(max_length=64)
    project: str = Field(max_length=128)
    created_at: int
    cancelled: bool = False


class RetrievalTrace(SQLModel, table=True):
    """What one file_search call did: queries, every candidate and its scores, and which
    went into the prompt. Our extension; read through .../steps/{id}/file_search_trace."""

    __tablename__ = "retrieval_traces"

    seq: int | None = Field(default=None, primary_key=True)
    # The tool call's id, as the model sent it: unique only within its step, since many
    # providers (local models especially) reuse ids such as "call_0" across runs.
    id: str = Field(index=True, max_length=64)
    project: str = Field(max_length=128)
    run_id: str = Field(max_length=64)
    step_id: str = Field(max_length=64, index=True)
    created_at: int
    trace: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class RunRecord(SQLModel, table=True):
    """What the inspector shows of a run beyond its steps: each model call (the request
    as sent, the raw answer, tokens, latency, cost), each status change and each batch of
    server-side tool executions, in the order they happened. Written by the recorder
    (server/inspector/recorder.py), bounded in size, deleted with the thread and purged
    after ASSISTD_MODEL_CALL_RETENTION_DAYS."""

    __tablename__ = "run_records"
    __table_args__ = (Index("ix_run_records_run_seq", "run_id", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    thread_id: str = Field(max_length=64, index=True)
    run_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # model_call, status, tools
    created_at: int = Field(index=True)  # for retention
    at: float  # when it happened (Unix seconds, sub-second)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class ApiKey(SQLModel, table=True):
    """A bearer key of a project, made by `assistd keys create`. Only the key's SHA-256 is
    stored (server/api_keys.py says why that suffices); `prefix` is its visible start, for
    listing and revoking. Rows are never deleted, so revoking every key cannot reopen a
    server that once required keys."""

    __tablename__ = "api_keys"

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=64)
    project: str = Field(max_length=128)
    prefix: str = Field(max_length=32, index=True)
    key_hash: str = Field(unique=True, index=True, max_length=64)
    created_at: int
    revoked_at: int | None = None


class ModelUsage(SQLModel, table=True):
    """One finished model call's tokens and cost, written as the call ends (so usage
    survives restarts and sums across replicas). Accounting, not thread data: rows stay
    when the thread or run is deleted."""

    __tablename__ = "model_usage"
    __table_args__ = (
        Index("ix_model_usage_day_project", "day", "project"),
        Index("ix_model_usage_project_day", "project", "day"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    project: str = Field(max_length=128)
    day: str = Field(max_length=10)  # UTC, YYYY-MM-DD
    model: str = Field(max_length=256)
    run_id: str = Field(max_length=64)
    thread_id: str = Field(max_length=64)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0  # US dollars
    created_at: int


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model, for prebuilt Core statements (SQLModel does not declare
    `__table__` to type checkers)."""
    table = sa_inspect(model).local_table
    assert isinstance(table, Table)
    return table
