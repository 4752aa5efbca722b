"""The ingestion worker: claims waiting vector-store files (server/tools/ingest_jobs.py),
ingests each in a thread of its own, and stops any that lose their row.

Scheduling. A process ingests up to ASSISTD_INGEST_CONCURRENCY files at once, and one
more per tick for a project that has nothing being ingested anywhere (up to twice the
setting), so a small file never waits for another project's big ones to finish. The files
in flight take turns on one encoder lane batch by batch (retrieval/pipeline.py), so that
small file is embedded after at most one batch of each.

Stopping. Every tick renews the leases of the files in flight with a compare-and-set on
(file, generation, status, owner); a row that no longer matches (detached, its store or
file deleted, its batch cancelled, queued again) stops its ingestion at the next piece of
text or batch, within a second or so, and the routes that cause this wake the worker at
once. Between batches the pipeline also records its progress with the same compare-and-
set, so another replica's delete is seen there too. On shutdown, ingestions get the grace
period less a margin to finish, are then told to stop, and their leases lapse at once so
another worker starts them over; the threads are daemons, so a batch still running never
holds the process past the grace.

Chunks. An attempt writes chunks tagged with its generation and:

* when it finished the row, removes the older generations' chunks (on success) or its own
  and the older ones (on failure), never a newer attempt's;
* when it lost the row, removes only its own chunks;
* when stopped for shutdown, leaves them (the next attempt's success removes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sqlmodel import Session

from retrieval.pipeline import IngestProgress, Lane
from server.config import Settings
from server.db import Database
from server.storage import BlobStore
from server.tools import ingest_jobs
from server.tools.ingest_jobs import Claim, Key
from server.tools.search_service import Ingested, SearchService

log = logging.getLogger("assistd.ingest")
T = TypeVar("T")
CHECKPOINT_SECONDS = 0.5  # progress is written at most this often per file
STOP_MARGIN_SECONDS = 3.0  # of the shutdown grace, kept for ingestions to stop


class IngestObserver(Protocol):
    """What hears of each finished ingestion (metrics): the run-observer seam's
    `Observers` fits, without this module importing the run engine."""

    async def ingest_ended(
        self, store_id: str, file_id: str, chunks: int, seconds: float, error: str | None
    ) -> None: ...


@dataclass
class _Job:
    claim: Claim
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # why it was told to stop: "cancelled" or "shutdown"
    task: asyncio.Task[None] | None = None

    def halt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()


class _Control:
    """The pipeline's view of its job (retrieval.pipeline.Control), used in its thread."""

    def __init__(self, job: _Job, db: Database, owner: str, lease_seconds: float) -> None:
        self.job, self.db, self.owner, self.lease_seconds = job, db, owner, lease_seconds
        self._written = 0.0

    def stopped(self) -> bool:
        return self.job.stop.is_set()

    def checkpoint(self, progress: IngestProgress) -> bool:
        if self.stopped():
            return False
        now = time.monotonic()
        if now - self._written < CHECKPOINT_SECONDS:
            return True
        self._written = now
        try:
            with Session(self.db.engine, expire_on_commit=False) as session:
                kept = ingest_jobs.checkpoint(
                    session, self.owner, self.job.claim, progress, self.lease_seconds
                )
        except Exception:  # the database is away: keep going, the next tick checks
            log.warning("could not record progress of %s", self.job.claim[1], exc_info=True)
            return not self.stopped()
        if not kept:
            self.job.halt("cancelled")
        return kept


def _in_daemon_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """`fn()` in a daemon thread, as a future of the running loop: unlike the default
    executor's threads, it never keeps the process alive at exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result, error = fn(), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # a closed loop: the process is exiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future


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
        self.lane = Lane()
        # Keyed by claim: a stale attempt and the file's next one may run side by side.
        self.jobs: dict[Claim, _Job] = {}
        self._stopping = False

    async def tick(self, claim_jobs: bool) -> None:
        lease = self.settings.lease_seconds
        if self.jobs:
            for lost in await self.db.run(ingest_jobs.renew, self.owner, list(self.jobs), lease):
                if lost in self.jobs:
                    self.jobs[lost].halt("cancelled")
        if not claim_jobs or self._stopping:
            return
        slots = self.settings.ingest_concurrency
        claims: list[Claim] = []
        if len(self.jobs) < slots:
            claims = await self.db.run(ingest_jobs.claim, self.owner, lease, slots - len(self.jobs))
        if len(self.jobs) + len(claims) >= slots and len(self.jobs) + len(claims) < 2 * slots:
            # Every slot is taken: a project with nothing in flight still gets one.
            claims += await self.db.run(ingest_jobs.claim, self.owner, lease, 1, True)
        for claimed in claims:
            job = _Job(claimed)
            job.task = asyncio.create_task(self._ingest(job), name=f"ingest {claimed[1]}")
            self.jobs[claimed] = job
            job.task.add_done_callback(functools.partial(self._done, claimed))

    def _done(self, claimed: Claim, _: asyncio.Task[None]) -> None:
        self.jobs.pop(claimed, None)

    async def _ingest(self, job: _Job) -> None:
        started = time.perf_counter()
        store_id, file_id, generation = job.claim
        key: Key = (store_id, file_id)
        try:
            loaded = await self.db.run(ingest_jobs.load_job, self.blobs, job.claim)
            if loaded is None:
                return
            spec, size = loaded
            log.info(
                "ingesting %s (%s, %d bytes) into %s (#%d)",
                file_id,
                spec.filename,
                size,
                store_id,
                generation,
            )
            control = _Control(job, self.db, self.owner, self.settings.lease_seconds)
            result = await _in_daemon_thread(
                lambda: self.search.ingest(spec, control, self.lane), f"ingest {file_id}"
            )
            if result.stopped:
                await self._stopped(job, result)
                return
            if not await self.db.run(ingest_jobs.finish, job.claim, result):
                # Cancelled, detached, re-queued or claimed again as it ended: take back
                # our own chunks, and only ours.
                await self._take_back(job.claim)
                log.info("ingestion of %s into %s (#%d) discarded", file_id, store_id, generation)
                return
            # Ours is now the file's state: earlier attempts' chunks go (on failure, all
            # up to ours, so nothing half-indexed stays); a later attempt's stay.
            older_than = generation if not result.error else generation + 1
            await asyncio.to_thread(
                self.search.remove_file, store_id, file_id, older_than=older_than
            )
            attributes = await self.db.run(ingest_jobs.current_attributes, key)
            if not result.error and attributes is not None and attributes != spec.attributes:
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

    async def _stopped(self, job: _Job, result: Ingested) -> None:
        store_id, file_id, generation = job.claim
        if job.reason == "shutdown":
            log.info(
                "ingestion of %s into %s (#%d) stopped for shutdown after %d chunks; "
                "its lease lapses for another worker",
                file_id,
                store_id,
                generation,
                result.chunks,
            )
            return
        await self._take_back(job.claim)
        log.info(
            "ingestion of %s into %s (#%d) discarded: the file left the store or was "
            "cancelled after %d chunks",
            file_id,
            store_id,
            generation,
            result.chunks,
        )

    async def _take_back(self, job: Claim) -> None:
        """Remove this attempt's chunks; a store deleted meanwhile goes whole (a batch
        written after the delete made its collection again)."""
        store_id, file_id, generation = job
        if await self.db.run(ingest_jobs.store_exists, store_id):
            await asyncio.to_thread(
                self.search.remove_file, store_id, file_id, generation=generation
            )
        else:
            await asyncio.to_thread(self.search.remove_store, store_id)

    async def stop(self, grace: float) -> None:
        """Stop claiming; give the files in flight the grace period less a margin, tell
        the rest to stop, and make every lease of ours lapse so another worker restarts
        those files at once."""
        self._stopping = True
        jobs = list(self.jobs.values())
        tasks = [job.task for job in jobs if job.task is not None]
        if tasks:
            margin = min(STOP_MARGIN_SECONDS, grace / 2)
            if grace - margin > 0:
                await asyncio.wait(tasks, timeout=grace - margin)
            for job in jobs:
                job.halt("shutdown")
            pending = [task for task in tasks if not task.done()]
            if pending and margin > 0:
                await asyncio.wait(pending, timeout=margin)
            for task in pending:
                task.cancel()  # a batch still running ends with the process (daemon thread)
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.db.run(ingest_jobs.release, self.owner)
