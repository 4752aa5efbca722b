"""Ingestion jobs: the vector_store_files row is the job, leased like a run.

A worker claims `in_progress` rows whose lease is free or lapsed, ingests them in a
thread, renews the leases while it works, and finishes each with a compare-and-set on
(status, generation). A process that dies leaves its leases to lapse, and another worker
ingests those files from scratch.

Generations. Each claim gives the row the next value of its store's counter
(`vector_stores.ingest_generation`), so within a store a later attempt always has a
higher generation, even for a file detached and attached again (a new row). The attempt
writes its chunks tagged with its generation, beside any other attempt's, and:

* finishes the row only while the row still carries its generation and is in_progress
  (a re-queue clears the generation, a re-claim replaces it, a cancel or detach changes
  the status or removes the row): a stale attempt never overwrites the status;
* when it finished the row, removes the older generations' chunks (on success) or its own
  and the older ones (on failure), never a newer attempt's;
* when it lost the row, removes only its own chunks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import Session, col, select

from server.config import Settings
from server.db import Database
from server.models import StoredFile, VectorStore, VectorStoreFile
from server.storage import BlobStore
from server.tools.search_service import Ingested, IngestJob, SearchService

log = logging.getLogger("assistd.ingest")
Key = tuple[str, str]  # (vector_store_id, file_id)
Claim = tuple[str, str, int]  # (vector_store_id, file_id, generation)


class IngestObserver(Protocol):
    """What hears of each finished ingestion (metrics): the run-observer seam's
    `Observers` fits, without this module importing the run engine."""

    async def ingest_ended(
        self, store_id: str, file_id: str, chunks: int, seconds: float, error: str | None
    ) -> None: ...


def _free_lease(t: float) -> ColumnElement[bool]:
    lease = col(VectorStoreFile.lease_expires_at)
    return or_(lease.is_(None), lease < t)


def _is(job: Claim | Key) -> tuple[ColumnElement[bool], ...]:
    """The row of a (store, file) key, or of a claim: also still at its generation."""
    where: tuple[ColumnElement[bool], ...] = (
        col(VectorStoreFile.vector_store_id) == job[0],
        col(VectorStoreFile.id) == job[1],
    )
    if len(job) == 3:
        where += (col(VectorStoreFile.generation) == job[2],)
    return where


def claim(session: Session, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
    """Lease up to `limit` waiting files, oldest first (SKIP LOCKED on PostgreSQL, so
    replicas take disjoint rows; SQLite's single writer makes the UPDATE atomic), and give
    each the next generation of its store."""
    t = time.time()
    seq_ = col(VectorStoreFile.seq)
    waiting = (col(VectorStoreFile.status) == "in_progress", _free_lease(t))
    candidates = select(seq_).where(*waiting).order_by(seq_).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    rows = session.exec(
        update(VectorStoreFile)
        .where(seq_.in_(candidates.scalar_subquery()), *waiting)
        .values(lease_owner=owner, lease_expires_at=t + lease_seconds)
        .returning(seq_, col(VectorStoreFile.vector_store_id), col(VectorStoreFile.id))
    ).all()
    by_store: dict[str, list[tuple[int, str]]] = {}
    for seq, store_id, file_id in rows:
        assert seq is not None  # a row's primary key
        by_store.setdefault(store_id, []).append((seq, file_id))
    claimed: list[Claim] = []
    # Stores in a fixed order: two replicas bumping the same stores cannot deadlock.
    for store_id in sorted(by_store):
        files = sorted(by_store[store_id])
        generation_ = col(VectorStore.ingest_generation)
        top = session.exec(
            update(VectorStore)
            .where(col(VectorStore.id) == store_id)
            .values(ingest_generation=generation_ + len(files))
            .returning(generation_)
        ).scalar()
        if top is None:  # the store is gone (its rows go with it)
            continue
        for generation, (seq, file_id) in enumerate(files, start=top - len(files) + 1):
            session.exec(update(VectorStoreFile).where(seq_ == seq).values(generation=generation))
            claimed.append((store_id, file_id, generation))
    session.commit()
    return claimed


def load_job(session: Session, blobs: BlobStore, job: Claim) -> IngestJob | None:
    """The job's inputs, or None when the row is no longer this claim's."""
    row = session.exec(
        select(VectorStoreFile).where(
            VectorStoreFile.vector_store_id == job[0], VectorStoreFile.id == job[1]
        )
    ).first()
    store = session.exec(select(VectorStore).where(VectorStore.id == job[0])).first()
    if row is None or store is None or row.generation != job[2] or row.status != "in_progress":
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
        generation=row.generation,
    )


def finish(session: Session, job: Claim, result: Ingested) -> bool:
    """Record the outcome if the row is still this claim's (in_progress, same generation);
    False when a cancel, detach, re-queue or newer claim took it meanwhile."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if result.error:
        values.update(status="failed", last_error=result.error)
    else:
        values.update(status="completed", usage_bytes=result.usage_bytes, chunk_count=result.chunks)
    done = session.exec(
        update(VectorStoreFile)
        .where(*_is(job), col(VectorStoreFile.status) == "in_progress")
        .values(**values)
    ).rowcount
    session.commit()
    return bool(done)


def current_attributes(session: Session, key: Key) -> dict[str, Any] | None:
    found = session.exec(select(VectorStoreFile.attributes).where(*_is(key))).first()
    return None if found is None else dict(found)


class Ingestor:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        search: SearchService,
        blobs: BlobStore,
        owner: str,
        observer: IngestObserver | None = None,
    ) -> None:
        self.db = db
        self.observer = observer
        self.settings = settings
        self.search = search
        self.blobs = blobs
        self.owner = owner
        # Keyed by claim: a stale attempt and the file's next one may run side by side.
        self.tasks: dict[Claim, asyncio.Task[None]] = {}

    async def tick(self, claim_jobs: bool) -> None:
        if self.tasks:
            await self.db.run(self._renew)
        free = self.settings.ingest_concurrency - len(self.tasks)
        if not claim_jobs or free <= 0:
            return
        for job in await self.db.run(claim, self.owner, self.settings.lease_seconds, free):
            task = asyncio.create_task(self._ingest(job), name=f"ingest {job[1]}#{job[2]}")
            self.tasks[job] = task
            task.add_done_callback(functools.partial(self._done, job))

    def _done(self, job: Claim, _: asyncio.Task[None]) -> None:
        self.tasks.pop(job, None)

    def _renew(self, session: Session) -> None:
        for job in list(self.tasks):
            session.exec(
                update(VectorStoreFile)
                .where(*_is(job), col(VectorStoreFile.lease_owner) == self.owner)
                .values(lease_expires_at=time.time() + self.settings.lease_seconds)
            )
        session.commit()

    async def _ingest(self, job: Claim) -> None:
        started = time.perf_counter()
        store_id, file_id, generation = job
        key: Key = (store_id, file_id)
        try:
            loaded = await self.db.run(load_job, self.blobs, job)
            if loaded is None:
                return
            result = await asyncio.to_thread(self.search.ingest, loaded)
            if not await self.db.run(finish, job, result):
                # Cancelled, detached, re-queued or claimed again while we worked: take
                # back our own chunks, and only ours.
                await asyncio.to_thread(
                    self.search.remove_file, store_id, file_id, generation=generation
                )
                log.info("ingestion of %s into %s (#%d) discarded", file_id, store_id, generation)
                return
            # Ours is now the file's state: earlier attempts' chunks go (on failure, all
            # up to ours, so nothing half-indexed stays); a later attempt's stay.
            older_than = generation if not result.error else generation + 1
            await asyncio.to_thread(
                self.search.remove_file, store_id, file_id, older_than=older_than
            )
            attributes = await self.db.run(current_attributes, key)
            if not result.error and attributes is not None and attributes != loaded.attributes:
                # Updated while we worked: the index must filter on the new values.
                await asyncio.to_thread(self.search.update_attributes, *key, attributes)
            log.info(
                "ingested %s into %s: %s in %.0f ms",
                file_id,
                store_id,
                result.error["code"] if result.error else f"{result.chunks} chunks",
                (time.perf_counter() - started) * 1000,
            )
            error = result.error["code"] if result.error else None
            seconds = time.perf_counter() - started
            if self.observer is not None:
                await self.observer.ingest_ended(store_id, file_id, result.chunks, seconds, error)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the worker alive; the lease lapses and another retries
            log.exception("ingestion of %s into %s crashed", file_id, store_id)

    async def stop(self, grace: float) -> None:
        tasks = list(self.tasks.values())
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        def release(session: Session) -> None:
            session.exec(
                update(VectorStoreFile)
                .where(col(VectorStoreFile.lease_owner) == self.owner)
                .values(lease_expires_at=0.0)
            )
            session.commit()

        await self.db.run(release)
