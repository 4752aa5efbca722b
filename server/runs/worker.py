"""The worker loop: claims runnable runs as durable jobs and keeps their leases alive.

The run row is the job. A worker claims a queued (or cancelling) run by writing its
name and a lease deadline with a compare-and-set UPDATE, renews the leases of the runs
it executes, expires runs that waited too long for tool outputs, and ends runs whose
worker died (lease lapsed while in_progress) as failed with server_error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from server import run_states as states
from server.crud.runs import RunGone
from server.runs import leases
from server.runs.runner import Runner
from server.tools.ingestion import Ingestor

log = logging.getLogger("assistd.worker")

CLAIM_BATCH = 64


@dataclass
class Chore:
    """Upkeep the worker loop runs every `interval` seconds (purging expired records):
    in processes that claim jobs, first at the loop's first tick."""

    name: str
    interval: float
    work: Callable[[], Awaitable[None]]
    due: float = 0.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        runner: Runner,
        *,
        claim_jobs: bool = True,
        ingestor: Ingestor | None = None,
        chores: Sequence[Chore] = (),
    ) -> None:
        self.runner = runner
        self.chores = list(chores)
        self.ingestor = ingestor
        self.settings = runner.settings
        self.owner = runner.owner
        self.claim_jobs = claim_jobs
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.last_tick = 0.0  # wall clock of the last tick that completed (health, metrics)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="assistd worker")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; give in-flight runs the grace period to finish, then interrupt
        the rest and hand them back (lease set to lapse: another worker fails them with
        server_error rather than leaving them in_progress). Ingestions stop within the
        same grace period, at the same time."""
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task
        grace = self.settings.shutdown_grace_seconds
        if self.ingestor is not None:
            await asyncio.gather(self.ingestor.stop(grace), self._stop_runs())
        else:
            await self._stop_runs()

    async def _stop_runs(self) -> None:
        tasks = self.runner.live.tasks()
        if tasks and self.settings.shutdown_grace_seconds > 0:
            log.info(
                "waiting up to %gs for %d runs", self.settings.shutdown_grace_seconds, len(tasks)
            )
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        tasks = [task for task in tasks if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.runner.db.run(leases.release_all, self.owner)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
                self.last_tick = time.time()
            except Exception:  # the loop must survive a bad tick (e.g. database restart)
                log.exception("worker tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.worker_poll_seconds)
            self._wake.clear()

    async def tick(self) -> None:
        if self.runner.live:
            live, lease = self.runner.live.ids(), self.settings.lease_seconds
            await self.runner.db.run(leases.renew, self.owner, live, lease)
        await self._cancel_requested_elsewhere()
        await self._expire_waiting()
        await self._end_orphans()
        if self.claim_jobs:
            await self._claim_runnable()
        if self.ingestor is not None:
            await self.ingestor.tick(self.claim_jobs)
        if self.claim_jobs:
            await self._chores()

    async def _chores(self) -> None:
        for chore in self.chores:
            if time.monotonic() < chore.due:
                continue
            chore.due = time.monotonic() + chore.interval
            try:
                await chore.work()
            except Exception:  # the next round tries again
                log.exception("worker chore %s failed", chore.name)

    async def _cancel_requested_elsewhere(self) -> None:
        """A cancel that reached another replica shows up here as status `cancelling`."""
        if not self.runner.live:
            return
        cancelling = await self.runner.db.run(leases.cancelling, self.runner.live.ids())
        for run_id in cancelling:
            self.runner.live.interrupt(run_id)

    async def _expire_waiting(self) -> None:
        for run in await self.runner.db.run(leases.waited_too_long):
            with contextlib.suppress(RunGone):  # its thread was deleted meanwhile
                if await self.runner.transition(run, states.EXPIRED):
                    self.runner.emit_run(run)

    async def _end_orphans(self) -> None:
        for run in await self.runner.db.run(leases.orphans):
            if run.id in self.runner.live:
                continue
            log.warning("run %s lost its worker; failing it", run.id)
            with contextlib.suppress(RunGone):
                await self.runner.transition(
                    run,
                    states.FAILED,
                    last_error={
                        "code": "server_error",
                        "message": "The worker executing this run stopped before it finished.",
                    },
                )

    async def _claim_runnable(self) -> None:
        claimed = await self.runner.db.run(
            leases.claim_batch,
            self.owner,
            self.settings.lease_seconds,
            CLAIM_BATCH,
            self.runner.live.ids(),
        )
        for run_id in claimed:
            self.runner.start(run_id)
