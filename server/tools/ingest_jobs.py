"""Ingestion jobs in the database: the vector_store_files row is the job, leased like a run.

Claims are fair. Waiting files are taken round robin: a project's k-th waiting file (its
stores interleaved, the store served longest ago first) ranks k plus the number of its
files being ingested anywhere right now, ties go to the project served longest ago, then
to the oldest file. So a small file of project B never waits behind project A's queue,
and two replicas agree on the order because it is computed from rows alone. The ranking
is read first (window functions cannot be locked) and the chosen rows are then taken
with one `UPDATE ... RETURNING` that checks again that they wait (`FOR UPDATE SKIP LOCKED`
on PostgreSQL, so replicas take disjoint rows; SQLite's single writer makes it atomic).

Generations. Each claim gives the row the next value of its store's counter
(`vector_stores.ingest_generation`), so within a store a later attempt always has a
higher generation, even for a file detached and attached again (a new row). The attempt
writes its chunks tagged with its generation, beside any other attempt's; only the row's
current generation may record progress or finish it (server/tools/ingestion.py says what
happens to the chunks).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import Session, col, select

from retrieval.pipeline import IngestProgress
from server.models import StoredFile, VectorStore, VectorStoreFile
from server.storage import BlobStore
from server.tools.search_service import Ingested, IngestJob

Key = tuple[str, str]  # (vector_store_id, file_id)
Claim = tuple[str, str, int]  # (vector_store_id, file_id, generation)
F = VectorStoreFile


def _waiting(t: float) -> tuple[ColumnElement[bool], ...]:
    lease = col(F.lease_expires_at)
    return (col(F.status) == "in_progress", or_(lease.is_(None), lease < t))


def fair_order(t: float, limit: int, idle_projects_only: bool = False) -> Any:
    """The seqs of the next `limit` waiting files, in round-robin order (module doc).
    `idle_projects_only`: only projects with nothing being ingested anywhere."""
    waiting = (
        select(col(F.seq), col(F.project), col(F.vector_store_id)).where(*_waiting(t)).subquery()
    )
    busy = (
        select(col(F.project), func.count().label("n"))
        .where(col(F.status) == "in_progress", col(F.lease_expires_at) >= t)
        .group_by(col(F.project))
        .subquery()
    )
    served = func.coalesce(col(VectorStore.ingest_claimed_at), 0.0)
    projects = (
        select(col(VectorStore.project), func.max(served).label("last"))
        .where(col(VectorStore.project).in_(select(waiting.c.project)))
        .group_by(col(VectorStore.project))
        .subquery()
    )
    in_store = func.row_number().over(
        partition_by=(waiting.c.project, waiting.c.vector_store_id), order_by=waiting.c.seq
    )
    per_store = (
        select(waiting.c.seq, waiting.c.project, served.label("store_last"), in_store.label("k"))
        .select_from(
            waiting.outerjoin(VectorStore, col(VectorStore.id) == waiting.c.vector_store_id)
        )
        .subquery()
    )
    turn = func.row_number().over(
        partition_by=per_store.c.project,
        order_by=(per_store.c.k, per_store.c.store_last, per_store.c.seq),
    )
    ranked = select(per_store.c.seq, per_store.c.project, turn.label("turn")).subquery()
    load = func.coalesce(busy.c.n, 0)
    query = (
        select(ranked.c.seq)
        .select_from(
            ranked.outerjoin(busy, busy.c.project == ranked.c.project).outerjoin(
                projects, projects.c.project == ranked.c.project
            )
        )
        .order_by(ranked.c.turn + load, func.coalesce(projects.c.last, 0.0), ranked.c.seq)
        .limit(limit)
    )
    return query.where(busy.c.n.is_(None)) if idle_projects_only else query


def claim(
    session: Session,
    owner: str,
    lease_seconds: float,
    limit: int,
    idle_projects_only: bool = False,
) -> list[Claim]:
    """Lease up to `limit` waiting files in round-robin order and give each the next
    generation of its store."""
    t = time.time()
    seqs: list[int] = list(session.exec(fair_order(t, limit, idle_projects_only)).all())
    if not seqs:
        return []
    seq_ = col(F.seq)
    candidates = select(seq_).where(seq_.in_(seqs), *_waiting(t))
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    rows = session.exec(
        update(F)
        .where(seq_.in_(candidates.scalar_subquery()), *_waiting(t))
        .values(
            lease_owner=owner,
            lease_expires_at=t + lease_seconds,
            chunk_count=0,
            usage_bytes=0,
            progress=0.0,
        )
        .returning(seq_, col(F.vector_store_id), col(F.id))
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
            .values(ingest_generation=generation_ + len(files), ingest_claimed_at=t)
            .returning(generation_)
        ).scalar()
        if top is None:  # the store is gone (its rows go with it)
            continue
        for generation, (seq, file_id) in enumerate(files, start=top - len(files) + 1):
            session.exec(update(F).where(seq_ == seq).values(generation=generation))
            claimed.append((store_id, file_id, generation))
    session.commit()
    return claimed


def _is(job: Claim | Key) -> tuple[ColumnElement[bool], ...]:
    """The row of a (store, file) key, or of a claim: also still at its generation."""
    where: tuple[ColumnElement[bool], ...] = (
        col(F.vector_store_id) == job[0],
        col(F.id) == job[1],
    )
    if len(job) == 3:
        where += (col(F.generation) == job[2],)
    return where


def _ours(job: Claim, owner: str) -> tuple[ColumnElement[bool], ...]:
    return (*_is(job), col(F.status) == "in_progress", col(F.lease_owner) == owner)


def renew(session: Session, owner: str, jobs: list[Claim], lease_seconds: float) -> list[Claim]:
    """Extend the leases of `jobs`; returns those whose row is no longer theirs (deleted,
    detached, cancelled, queued again): their ingestion must stop."""
    lost = []
    until = time.time() + lease_seconds
    for job in jobs:
        renewed = update(F).where(*_ours(job, owner)).values(lease_expires_at=until)
        kept = session.exec(renewed).rowcount
        if not kept:
            lost.append(job)
    session.commit()
    return lost


def checkpoint(
    session: Session, owner: str, job: Claim, progress: IngestProgress, lease_seconds: float
) -> bool:
    """Record how far the ingestion is (and extend its lease); False when the row is no
    longer this claim's."""
    kept = session.exec(
        update(F)
        .where(*_ours(job, owner))
        .values(
            chunk_count=progress.chunks,
            usage_bytes=progress.usage_bytes,
            progress=progress.fraction,
            lease_expires_at=time.time() + lease_seconds,
        )
    ).rowcount
    session.commit()
    return bool(kept)


def release(session: Session, owner: str) -> None:
    """Make this owner's leases lapse now: another worker takes the files over at once."""
    session.exec(update(F).where(col(F.lease_owner) == owner).values(lease_expires_at=0.0))
    session.commit()


def load_job(session: Session, blobs: BlobStore, job: Claim) -> tuple[IngestJob, int] | None:
    """The job's inputs and the file's size, or None when the row is no longer this
    claim's."""
    row = session.exec(select(F).where(*_is((job[0], job[1])))).first()
    store = session.exec(select(VectorStore).where(col(VectorStore.id) == job[0])).first()
    if row is None or store is None or row.generation != job[2] or row.status != "in_progress":
        return None
    stored = session.exec(
        select(StoredFile).where(
            col(StoredFile.project) == row.project, col(StoredFile.id) == row.id
        )
    ).first()
    loaded = IngestJob(
        store_id=store.id,
        file_id=row.id,
        filename=stored.filename if stored else row.id,
        path=blobs.path(stored.sha256) if stored else blobs.path("0" * 64),
        strategy=row.chunking_strategy,
        attributes=row.attributes or {},
        embedding_model=store.embedding_model,
        generation=row.generation,
    )
    return loaded, stored.bytes if stored else 0


def finish(session: Session, job: Claim, result: Ingested) -> bool:
    """Record the outcome if the row is still this claim's (in_progress, same generation);
    False when a cancel, detach, re-queue or newer claim took it meanwhile."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "progress": None}
    if result.error:
        values.update(status="failed", last_error=result.error)
    else:
        values.update(status="completed", usage_bytes=result.usage_bytes, chunk_count=result.chunks)
    done = session.exec(
        update(F).where(*_is(job), col(F.status) == "in_progress").values(**values)
    ).rowcount
    session.commit()
    return bool(done)


def current_attributes(session: Session, key: Key) -> dict[str, Any] | None:
    found = session.exec(select(F.attributes).where(*_is(key))).first()
    return None if found is None else dict(found)


def store_exists(session: Session, store_id: str) -> bool:
    return (
        session.exec(select(VectorStore.seq).where(VectorStore.id == store_id)).first() is not None
    )
