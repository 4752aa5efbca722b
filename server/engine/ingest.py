"""Ingestion jobs: the vector_store_files row is the job, leased like a run.

A worker claims `in_progress` rows whose lease is free or lapsed, ingests them in a
thread, renews the leases while it works, and finishes each with a compare-and-set on
(status, lease_owner): if the file was cancelled, detached or deleted meanwhile, the
update matches nothing and the chunks just written are removed again. A process that
dies leaves its leases to lapse, and another worker ingests those files from scratch
(adding a file's chunks replaces any it already had).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, select

from server.config import Settings
from server.engine.retrieval import Ingested, IngestJob, Retrieval
from server.models import StoredFile, VectorStore, VectorStoreFile
from server.storage import BlobStore

log = logging.getLogger("assistd.ingest")
T = TypeVar("T")
Key = tuple[str, str]  # (vector_store_id, file_id)


def _free_lease(t: float) -> Any:
    return or_(
        VectorStoreFile.lease_expires_at.is_(None),  # type: ignore[union-attr]
        VectorStoreFile.lease_expires_at < t,  # type: ignore[operator]
    )


def claim(session: Session, owner: str, lease_seconds: float, limit: int) -> list[Key]:
    """Lease up to `limit` waiting files, oldest first (SKIP LOCKED on PostgreSQL, so
    replicas take disjoint rows; SQLite's single writer makes the UPDATE atomic)."""
    t = time.time()
    waiting = (VectorStoreFile.status == "in_progress", _free_lease(t))
    candidates = select(VectorStoreFile.seq).where(*waiting).order_by(VectorStoreFile.seq)  # type: ignore[arg-type]
    candidates = candidates.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    rows = session.exec(  # type: ignore[call-overload]
        update(VectorStoreFile)
        .where(VectorStoreFile.seq.in_(candidates.scalar_subquery()), *waiting)  # type: ignore[union-attr]
        .values(lease_owner=owner, lease_expires_at=t + lease_seconds)
        .returning(VectorStoreFile.vector_store_id, VectorStoreFile.id)
    ).all()
    session.commit()
    return [(r[0], r[1]) for r in rows]


def load_job(session: Session, blobs: BlobStore, key: Key) -> IngestJob | None:
    row = session.exec(
        select(VectorStoreFile).where(
            VectorStoreFile.vector_store_id == key[0], VectorStoreFile.id == key[1]
        )
    ).first()
    store = session.exec(select(VectorStore).where(VectorStore.id == key[0])).first()
    if row is None or store is None:
        return None
    stored = session.exec(
        select(StoredFile).where(StoredFile.project == row.project, StoredFile.id == row.id)
    ).first()
    return IngestJob(
        store_id=store.id,
        file_id=row.id,
        filename=stored.filename if stored else row.id,
        path=blobs.path(stored.sha256) if stored else blobs.path("0" * 64),
        strategy=row.chunking_strategy,
        attributes=row.attributes or {},
        embedding_model=store.embedding_model,
    )


def finish(session: Session, key: Key, owner: str, result: Ingested) -> bool:
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if result.error:
        values.update(status="failed", last_error=result.error)
    else:
        values.update(status="completed", usage_bytes=result.usage_bytes, chunk_count=result.chunks)
    done = session.exec(  # type: ignore[call-overload]
        update(VectorStoreFile)
        .where(
            VectorStoreFile.vector_store_id == key[0],
            VectorStoreFile.id == key[1],
            VectorStoreFile.status == "in_progress",
            VectorStoreFile.lease_owner == owner,
        )
        .values(**values)
    ).rowcount
    session.commit()
    return bool(done)


def current_attributes(session: Session, key: Key) -> dict[str, Any] | None:
    return session.exec(
        select(VectorStoreFile.attributes).where(
            VectorStoreFile.vector_store_id == key[0], VectorStoreFile.id == key[1]
        )
    ).first()


class Ingestor:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        retrieval: Retrieval,
        blobs: BlobStore,
        owner: str,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.retrieval = retrieval
        self.blobs = blobs
        self.owner = owner
        self.tasks: dict[Key, asyncio.Task[None]] = {}

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        def work() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session, *args)

        return await asyncio.to_thread(work)

    async def tick(self, claim_jobs: bool) -> None:
        if self.tasks:
            await self.db(self._renew)
        free = self.settings.ingest_concurrency - len(self.tasks)
        if not claim_jobs or free <= 0:
            return
        for key in await self.db(claim, self.owner, self.settings.lease_seconds, free):
            task = asyncio.create_task(self._ingest(key), name=f"ingest {key[1]}")
            self.tasks[key] = task
            task.add_done_callback(lambda _, k=key: self.tasks.pop(k, None))  # type: ignore[misc]

    def _renew(self, session: Session) -> None:
        keys = list(self.tasks)
        for store_id, file_id in keys:
            session.exec(  # type: ignore[call-overload]
                update(VectorStoreFile)
                .where(
                    VectorStoreFile.vector_store_id == store_id,
                    VectorStoreFile.id == file_id,
                    VectorStoreFile.lease_owner == self.owner,
                )
                .values(lease_expires_at=time.time() + self.settings.lease_seconds)
            )
        session.commit()

    async def _ingest(self, key: Key) -> None:
        started = time.perf_counter()
        try:
            job = await self.db(load_job, self.blobs, key)
            if job is None:
                return
            result = await asyncio.to_thread(self.retrieval.ingest, job)
            if not await self.db(finish, key, self.owner, result):
                # Cancelled, detached or deleted while we worked: take the chunks back out.
                await asyncio.to_thread(self.retrieval.remove_file, *key)
                log.info("ingestion of %s into %s discarded", key[1], key[0])
                return
            attributes = await self.db(current_attributes, key)
            if not result.error and attributes is not None and attributes != job.attributes:
                # Updated while we worked: the index must filter on the new values.
                await asyncio.to_thread(self.retrieval.update_attributes, *key, attributes)
            log.info(
                "ingested %s into %s: %s in %.0f ms",
                key[1],
                key[0],
                result.error["code"] if result.error else f"{result.chunks} chunks",
                (time.perf_counter() - started) * 1000,
            )
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the worker alive; the lease lapses and another retries
            log.exception("ingestion of %s into %s crashed", key[1], key[0])

    async def stop(self, grace: float) -> None:
        tasks = list(self.tasks.values())
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        def release(session: Session) -> None:
            session.exec(  # type: ignore[call-overload]
                update(VectorStoreFile)
                .where(VectorStoreFile.lease_owner == self.owner)
                .values(lease_expires_at=0.0)
            )
            session.commit()

        await self.db(release)
