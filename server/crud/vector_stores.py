"""Vector store rows, their files (the ingestion jobs) and file batches.

Counts, sizes and statuses are derived from the file rows with one GROUP BY, never
stored twice, so every replica reports the same numbers. The chunks themselves live in
the index (retrieval.ChunkIndex); removing them is the caller's job (the search service,
server/tools/search_service.py), after the rows are gone, so a search never sees a
detached file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from retrieval.chunking import InvalidChunkingStrategy, normalize_strategy, reported_strategy
from retrieval.embedding import EmbeddingModels, UnknownEmbeddingModel
from server.crud import files
from server.errors import bad_request, not_found
from server.ids import new_id, now
from server.models import StoredFile, Thread, VectorStore, VectorStoreFile, VectorStoreFileBatch
from server.protocol.vector_stores import (
    ExpiresAfter,
    FileCounts,
    FileProgress,
    VectorStoreCreate,
    VectorStoreFileObject,
    VectorStoreObject,
    VectorStoreUpdate,
)

DAY = 86_400
THREAD_STORE_DAYS = 7  # the hosted API's expiry for stores made from message attachments


# --- stores -----------------------------------------------------------------------------


@dataclass
class StoreStats:
    file_counts: FileCounts
    usage_bytes: int = 0


def stats(session: Session, store_ids: Iterable[str]) -> dict[str, StoreStats]:
    ids = list(store_ids)
    out = {store_id: StoreStats(FileCounts()) for store_id in ids}
    if not ids:
        return out
    rows = session.exec(
        select(
            VectorStoreFile.vector_store_id,
            VectorStoreFile.status,
            func.count(),
            func.coalesce(func.sum(VectorStoreFile.usage_bytes), 0),
        )
        .where(col(VectorStoreFile.vector_store_id).in_(ids))
        .group_by(VectorStoreFile.vector_store_id, VectorStoreFile.status)
    ).all()
    for store_id, status, n, size in rows:
        entry = out[store_id]
        setattr(entry.file_counts, status, n)
        entry.file_counts.total += n
        entry.usage_bytes += int(size)
    return out


def is_expired(row: Any, at: int | None = None) -> bool:
    return row.expires_at is not None and row.expires_at <= (at or now())


def to_api(row: Any, store: StoreStats) -> VectorStoreObject:
    if is_expired(row):
        status = "expired"
    elif store.file_counts.in_progress:
        status = "in_progress"
    else:
        status = "completed"
    return VectorStoreObject(
        id=row.id,
        created_at=row.created_at,
        name=row.name or "",
        usage_bytes=store.usage_bytes,
        file_counts=store.file_counts,
        status=status,
        expires_after=row.expires_after,
        expires_at=row.expires_at,
        last_active_at=row.last_active_at,
        metadata=row.meta or {},
        embedding_model=row.embedding_model,
    )


def to_api_one(session: Session, row: VectorStore) -> VectorStoreObject:
    return to_api(row, stats(session, [row.id])[row.id])


def get(session: Session, project: str, store_id: str) -> VectorStore:
    row = session.exec(
        select(VectorStore).where(VectorStore.project == project, VectorStore.id == store_id)
    ).first()
    if row is None:
        raise not_found("vector store", store_id)
    return row


def require_stores(session: Session, project: str, store_ids: list[str], param: str) -> None:
    found = set(
        session.exec(
            select(VectorStore.id).where(
                VectorStore.project == project,
                col(VectorStore.id).in_(store_ids),
            )
        )
    )
    for i, store_id in enumerate(store_ids):
        if store_id not in found:
            raise bad_request(f"No vector store found with id '{store_id}'.", f"{param}[{i}]")


def check_embedding_model(models: EmbeddingModels, name: str, param: str) -> None:
    """400 unless `name` is a model this server offers (the bundled one, the operator's
    default and ASSISTD_EMBEDDING_MODELS: the search service's `models`). A name off
    that list is refused before anything is looked up, so the answer never says whether
    some path exists on the server. Loads nothing: a model that is offered but broken
    fails its files at ingestion instead."""
    try:
        models.get(name)
    except UnknownEmbeddingModel as exc:
        raise bad_request(str(exc), param=param) from None


def _expiry(expires_after: dict[str, Any] | None, anchor: int) -> int | None:
    return anchor + expires_after["days"] * DAY if expires_after else None


def create(
    session: Session,
    project: str,
    body: VectorStoreCreate,
    models: EmbeddingModels,
    commit: bool = True,
    param_prefix: str = "",
) -> VectorStore:
    """The store and its first files in one transaction (no half-created store).
    `models` are the embedding models offered (and the default of a store made without
    one); `param_prefix` places errors inside a larger body (the tool_resources helper)."""
    if body.embedding_model:
        check_embedding_model(models, body.embedding_model, f"{param_prefix}embedding_model")
    created = now()
    expires_after = body.expires_after.model_dump() if body.expires_after else None
    row = VectorStore(
        id=new_id("vector_store"),
        project=project,
        created_at=created,
        name=body.name or "",
        last_active_at=created,
        expires_after=expires_after,
        expires_at=_expiry(expires_after, created),
        meta=body.metadata or {},
        embedding_model=body.embedding_model or models.default,
    )
    session.add(row)
    if body.file_ids:
        strategy = chunking(body.chunking_strategy, f"{param_prefix}chunking_strategy")
        require_files(session, project, body.file_ids, f"{param_prefix}file_ids")
        for file_id in dict.fromkeys(body.file_ids):
            session.add(file_row(row, file_id, strategy, None, None))
    elif body.chunking_strategy is not None:
        chunking(body.chunking_strategy, f"{param_prefix}chunking_strategy")
    if commit:
        session.commit()
    return row


def add_attachments(
    session: Session,
    project: str,
    thread: Thread,
    file_ids: list[str],
    models: EmbeddingModels,
    commit: bool = True,
) -> bool:
    """Files attached to a message for file_search go into the thread's vector store, as
    the hosted API did. The thread's store is reused only while it can still be searched
    (not expired, and this project's); otherwise a new one, expiring 7 days after last
    use, becomes the thread's store (a thread holds at most one). True if any queued.

    `commit=False` leaves the writes in the caller's transaction (a run's
    additional_messages: the run, its messages and their store land together)."""
    if not file_ids:
        return False
    resources = dict(thread.tool_resources or {})
    store_ids = (resources.get("file_search") or {}).get("vector_store_ids") or []
    rows = (
        session.exec(
            select(VectorStore).where(
                VectorStore.project == project,
                col(VectorStore.id).in_(store_ids),
            )
        ).all()
        if store_ids
        else []
    )
    live = {row.id: row for row in rows if not is_expired(row)}
    store = next((live[s] for s in store_ids if s in live), None)
    if store is None:
        body = VectorStoreCreate(
            name=f"Vector store for {thread.id}",
            expires_after=ExpiresAfter(anchor="last_active_at", days=THREAD_STORE_DAYS),
        )
        store = create(session, project, body, models, commit=False)
        resources["file_search"] = {"vector_store_ids": [store.id]}
        thread.tool_resources = resources
        session.add(thread)
    else:
        touch(session, [store.id], commit=False)  # a new attachment is a use
    attached = set(
        session.exec(select(VectorStoreFile.id).where(VectorStoreFile.vector_store_id == store.id))
    )
    strategy = normalize_strategy(None)
    for file_id in dict.fromkeys(file_ids):
        if file_id not in attached:
            session.add(file_row(store, file_id, strategy, None, None))
    if commit:
        session.commit()
    return True


def update(session: Session, row: VectorStore, body: VectorStoreUpdate) -> VectorStore:
    fields = body.model_fields_set
    if "name" in fields:
        row.name = body.name or ""
    if "metadata" in fields:
        row.meta = body.metadata or {}
    if "expires_after" in fields:
        row.expires_after = body.expires_after.model_dump() if body.expires_after else None
        row.expires_at = _expiry(row.expires_after, row.last_active_at or row.created_at)
    session.add(row)
    session.commit()
    return row


def touch(session: Session, store_ids: list[str], commit: bool = True) -> None:
    """Mark stores used now: last_active_at moves, and with it an expiry anchored on it."""
    t = now()
    for row in session.exec(select(VectorStore).where(col(VectorStore.id).in_(store_ids))):
        if is_expired(row, t):
            continue
        row.last_active_at = t
        row.expires_at = _expiry(row.expires_after, t)
        session.add(row)
    if commit:
        session.commit()


def delete_store(session: Session, row: VectorStore) -> None:
    for model in (VectorStoreFile, VectorStoreFileBatch):
        session.exec(delete(model).where(col(model.vector_store_id) == row.id))
    session.delete(row)
    session.commit()


def searchable(session: Session, project: str, store_ids: list[str]) -> list[VectorStore]:
    """The stores a search may read: this project's, not expired, in the order given."""
    rows = session.exec(
        select(VectorStore).where(
            VectorStore.project == project,
            col(VectorStore.id).in_(store_ids),
        )
    ).all()
    by_id = {r.id: r for r in rows if not is_expired(r)}
    return [by_id[s] for s in dict.fromkeys(store_ids) if s in by_id]


# --- files ------------------------------------------------------------------------------


def chunking(raw: dict[str, Any] | None, param: str) -> dict[str, Any]:
    try:
        return normalize_strategy(raw)
    except InvalidChunkingStrategy as exc:
        suffix = exc.param.removeprefix("chunking_strategy")
        raise bad_request(str(exc), param=param + suffix) from None


def require_files(session: Session, project: str, file_ids: list[str], param: str) -> None:
    files.require_files(session, project, [(f, f"{param}[{i}]") for i, f in enumerate(file_ids)])


def file_to_api(row: Any) -> VectorStoreFileObject:
    strategy = reported_strategy(row.chunking_strategy or {})
    if strategy.get("type") != "static":
        # Our markdown/code chunkers are not in the SDK's union: report them as `other`,
        # as the hosted API did for files chunked before strategies existed.
        strategy = {"type": "other"}
    return VectorStoreFileObject(
        id=row.id,
        usage_bytes=row.usage_bytes,
        created_at=row.created_at,
        vector_store_id=row.vector_store_id,
        status=row.status,
        last_error=row.last_error,
        chunking_strategy=strategy,
        attributes=row.attributes or {},
        progress=(
            FileProgress(fraction=round(row.progress or 0.0, 4), chunks_done=row.chunk_count)
            if row.status == "in_progress"
            else None
        ),
    )


def file_row(
    store: VectorStore,
    file_id: str,
    strategy: dict[str, Any],
    attributes: dict[str, Any] | None,
    batch_id: str | None,
) -> VectorStoreFile:
    return VectorStoreFile(
        id=file_id,
        vector_store_id=store.id,
        project=store.project,
        created_at=now(),
        status="in_progress",
        chunking_strategy=strategy,
        attributes=attributes or {},
        batch_id=batch_id,
    )


def get_file(session: Session, project: str, store_id: str, file_id: str) -> VectorStoreFile:
    row = session.exec(
        select(VectorStoreFile).where(
            VectorStoreFile.project == project,
            VectorStoreFile.vector_store_id == store_id,
            VectorStoreFile.id == file_id,
        )
    ).first()
    if row is None:
        raise not_found("vector store file", file_id)
    return row


def attach(
    session: Session,
    store: VectorStore,
    file_id: str,
    raw_strategy: dict[str, Any] | None,
    attributes: dict[str, Any] | None,
) -> VectorStoreFile:
    """Queue a file for ingestion; attaching a file twice returns the first attachment."""
    strategy = chunking(raw_strategy, "chunking_strategy")
    files.require_files(session, store.project, [(file_id, "file_id")])
    existing = session.exec(
        select(VectorStoreFile).where(
            VectorStoreFile.vector_store_id == store.id, VectorStoreFile.id == file_id
        )
    ).first()
    if existing is not None:
        return existing
    row = file_row(store, file_id, strategy, attributes, None)
    session.add(row)
    session.commit()
    return row


def update_file(session: Session, row: VectorStoreFile, attributes: dict[str, Any] | None) -> None:
    row.attributes = attributes or {}
    session.add(row)
    session.commit()


def detach(session: Session, row: VectorStoreFile) -> None:
    session.delete(row)
    session.commit()


def detach_everywhere(session: Session, project: str, file_id: str) -> list[str]:
    """A deleted file leaves every store; returns the stores it was in."""
    store_ids = list(
        session.exec(
            select(VectorStoreFile.vector_store_id).where(
                VectorStoreFile.project == project, VectorStoreFile.id == file_id
            )
        )
    )
    session.exec(
        delete(VectorStoreFile).where(
            col(VectorStoreFile.project) == project, col(VectorStoreFile.id) == file_id
        )
    )
    session.commit()
    return store_ids


def stored_file(session: Session, project: str, file_id: str) -> StoredFile | None:
    return session.exec(
        select(StoredFile).where(StoredFile.project == project, StoredFile.id == file_id)
    ).first()
