"""Vector store file batches: several files queued for ingestion together, with one
status and file counts derived from their file rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from server.crud import files
from server.crud.vector_stores import chunking, file_row, get_file, require_files
from server.errors import APIError, bad_request, not_found
from server.ids import new_id, now
from server.models import VectorStore, VectorStoreFile, VectorStoreFileBatch
from server.protocol.vector_stores import FileBatchCreate, FileBatchObject, FileCounts


def create_batch(
    session: Session, store: VectorStore, body: FileBatchCreate
) -> VectorStoreFileBatch:
    if body.file_ids and body.files:
        raise bad_request("Give either 'file_ids' or 'files', not both.", param="files")
    if not body.file_ids and not body.files:
        raise bad_request("One of 'file_ids' or 'files' is required.", param="file_ids")
    default = chunking(body.chunking_strategy, "chunking_strategy")
    entries: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    if body.file_ids:
        require_files(session, store.project, body.file_ids, "file_ids")
        entries = [(f, default, body.attributes) for f in body.file_ids]
    else:
        assert body.files is not None
        refs = [(f.file_id, f"files[{i}].file_id") for i, f in enumerate(body.files)]
        files.require_files(session, store.project, refs)
        for i, item in enumerate(body.files):
            strategy = (
                chunking(item.chunking_strategy, f"files[{i}].chunking_strategy")
                if item.chunking_strategy is not None
                else default
            )
            attributes = item.attributes if item.attributes is not None else body.attributes
            entries.append((item.file_id, strategy, attributes))
    batch = VectorStoreFileBatch(
        id=new_id("file_batch"), vector_store_id=store.id, project=store.project, created_at=now()
    )
    session.add(batch)
    attached = set(
        session.exec(select(VectorStoreFile.id).where(VectorStoreFile.vector_store_id == store.id))
    )
    for file_id, strategy, attributes in entries:
        if file_id in attached:
            # Already in the store: the batch re-ingests it with its own settings.
            row = get_file(session, store.project, store.id, file_id)
            row.status, row.batch_id, row.last_error = "in_progress", batch.id, None
            row.chunking_strategy, row.attributes = strategy, attributes or {}
            # A new ingestion: an attempt still running on the old settings can no longer
            # finish the row (server/tools/ingestion.py).
            row.lease_owner, row.lease_expires_at, row.generation = None, None, None
            session.add(row)
        else:
            session.add(file_row(store, file_id, strategy, attributes, batch.id))
            attached.add(file_id)
    session.commit()
    return batch


def get_batch(session: Session, project: str, store_id: str, batch_id: str) -> VectorStoreFileBatch:
    row = session.exec(
        select(VectorStoreFileBatch).where(
            VectorStoreFileBatch.project == project,
            VectorStoreFileBatch.vector_store_id == store_id,
            VectorStoreFileBatch.id == batch_id,
        )
    ).first()
    if row is None:
        raise not_found("vector store file batch", batch_id)
    return row


def batch_to_api(session: Session, row: VectorStoreFileBatch) -> FileBatchObject:
    c = FileCounts()
    for status, n in session.exec(
        select(VectorStoreFile.status, func.count())
        .where(VectorStoreFile.batch_id == row.id)
        .group_by(VectorStoreFile.status)
    ).all():
        setattr(c, status, n)
        c.total += n
    if row.cancelled:
        status = "cancelled"
    elif c.in_progress:
        status = "in_progress"
    elif c.total and c.failed == c.total:
        status = "failed"
    else:
        status = "completed"
    return FileBatchObject(
        id=row.id,
        created_at=row.created_at,
        vector_store_id=row.vector_store_id,
        status=status,
        file_counts=c,
    )


def cancel_batch(session: Session, row: VectorStoreFileBatch) -> list[str]:
    """Files of the batch not yet ingested end `cancelled`; returns their ids (the
    caller removes whatever an ingestion in flight may already have indexed)."""
    if row.cancelled:
        raise APIError(400, f"Batch {row.id} is already cancelled.", param="batch_id")
    pending = list(
        session.exec(
            select(VectorStoreFile).where(
                VectorStoreFile.batch_id == row.id, VectorStoreFile.status == "in_progress"
            )
        )
    )
    if not pending and batch_to_api(session, row).status != "in_progress":
        raise APIError(
            400,
            f"Cannot cancel batch {row.id}: it has already finished.",
            param="batch_id",
        )
    for entry in pending:
        entry.status = "cancelled"
        entry.lease_owner, entry.lease_expires_at, entry.generation = None, None, None
        session.add(entry)
    row.cancelled = True
    session.add(row)
    session.commit()
    return [f.id for f in pending]
