"""The run observer behind the inspector: records every model call (the request exactly
as sent, after truncation; the raw answer; tokens, latency, cost), status change and
batch of server-side tool executions of a run, through the seam in server/runs/observe.py.

Writes are few and off the run's path: a run's start and its tool executions wait in
memory and go out in the same transaction as the next model call's record, or with the
run's next status change that leaves this process (an ending, or waiting for tool
outputs), so a plain run costs two small writes, each made beside the run rather than
awaited by it. Each record is bounded (server/inspector/bounded.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import litellm
from sqlmodel import Session

from server import run_states as states
from server.config import Settings
from server.crud import run_records
from server.crud.run_records import MODEL_CALL, STATUS, TOOLS, Entry
from server.db import Database
from server.inspector.bounded import bound, size
from server.models import Run
from server.runs.model_client import ModelClient
from server.runs.observe import ModelCall, RunObserver
from server.runs.worker import Chore
from server.tools.base import ToolCall

log = logging.getLogger("assistd.inspector")
# Runs whose early entries wait for their next write; past this many (runs interrupted
# by a shutdown never write again) the oldest are dropped.
MAX_PENDING_RUNS = 10_000
# Record writes running beside their runs before a run waits for its own.
MAX_WRITES_IN_FLIGHT = 256


def cost_of(litellm_model: str, usage: dict[str, int]) -> float:
    """The call's cost in USD from litellm's local cost map (no network); 0.0 for a
    model the map does not know (local models, private deployments)."""
    if not usage:
        return 0.0
    try:
        prompt, completion = litellm.cost_per_token(
            model=litellm_model,
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )
    except Exception:  # ModelNotMappedError and kin: not priced
        return 0.0
    return round(float(prompt) + float(completion), 8)


def model_call_data(call: ModelCall, litellm_model: str, cap: int) -> dict[str, Any]:
    request = call.request
    sent = {"model": request.model, **request.params()}
    answer = {
        "text": call.text,
        "tool_calls": call.answer_tool_calls(),
        "finish_reason": call.finish.reason if call.finish else None,
    }
    (sent, answer), cut = bound([sent, answer], cap - 2048)  # room for the rest
    usage = call.usage
    return {
        "number": call.number,
        "model": request.model,
        "route": call.route,
        "request": sent,
        "response": answer,
        "usage": usage or None,
        "cost": cost_of(litellm_model, usage),
        "started_at": call.started_at,
        "first_token_at": call.first_token_at,
        "ended_at": call.ended_at,
        "latency": call.latency,
        "error": {"code": call.error[0], "message": call.error[1]} if call.error else None,
        "cancelled": call.cancelled,
        "truncated": cut,
    }


def tools_data(
    kind: str, calls: Sequence[ToolCall], seconds: float, error: str | None, cap: int
) -> dict[str, Any]:
    """What ran: each call's id and the details its tool kept beyond the step's outputs
    (code_interpreter: the session's state, written files, the error)."""
    data = {
        "tool": kind,
        "seconds": round(seconds, 6),
        "error": error,
        "calls": [{"id": c.id, **_plain(c.use.observed(c) if c.use else {})} for c in calls],
    }
    bounded, _ = bound(data, cap)
    return dict(bounded)


def _plain(extra: Mapping[str, object]) -> dict[str, object]:
    """The JSON-able part of what a tool tells observers of a call."""
    plain = (str, int, float, bool, list, dict, type(None))
    return {k: v for k, v in extra.items() if isinstance(v, plain)}


class RunRecorder(RunObserver):
    def __init__(self, db: Database, settings: Settings, models: ModelClient) -> None:
        self.db = db
        self.cap = settings.model_call_max_bytes
        self.models = models
        self.pending: dict[str, list[Entry]] = {}
        self._tails: dict[str, asyncio.Task[None]] = {}  # each run's latest write
        self._writes: set[asyncio.Task[None]] = set()

    def _entry(self, run: Run, kind: str, data: dict[str, Any], at: float) -> Entry:
        return Entry(run.project, run.thread_id, run.id, kind, at, data)

    def _hold(self, entry: Entry) -> None:
        self.pending.setdefault(entry.run_id, []).append(entry)
        while len(self.pending) > MAX_PENDING_RUNS:
            self.pending.pop(next(iter(self.pending)))

    async def _write(
        self, run_id: str, *more: Entry, build: Callable[[], Entry] | None = None
    ) -> None:
        """Write the run's held entries with `more`, and the entry `build` makes (in the
        database's thread: pricing and bounding a big request take a while).

        The write runs beside the run, not in its way: a run's model call or ending is
        never delayed by its record (a thread hop and a commit, tens of milliseconds on a
        loaded machine). A run's writes stay in order; past MAX_WRITES_IN_FLIGHT (a
        database slower than the runs) the run waits for its write after all."""
        entries = [*self.pending.pop(run_id, []), *more]
        if not entries and build is None:
            return

        def work(session: Session) -> None:
            if build is not None:
                entries.append(build())
            run_records.write(session, entries)

        previous = self._tails.get(run_id)

        async def write() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await self.db.run(work)
            except Exception:
                log.exception("recording run %s failed", run_id)

        task = asyncio.get_running_loop().create_task(write(), name=f"record {run_id}")
        self._tails[run_id] = task
        self._writes.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._writes.discard(finished)
            if self._tails.get(run_id) is finished:
                del self._tails[run_id]

        task.add_done_callback(done)
        if len(self._writes) > MAX_WRITES_IN_FLIGHT:
            await asyncio.wait([task])

    async def drain(self) -> None:
        """Wait for the writes in flight (at shutdown)."""
        while self._writes:
            await asyncio.wait(list(self._writes))

    async def run_status(self, run: Run, previous: str) -> None:
        entry = self._entry(run, STATUS, {"from": previous, "to": run.status}, time.time())
        if run.status == states.IN_PROGRESS:
            self._hold(entry)  # a model call or an ending follows in this process
        else:
            await self._write(run.id, entry)

    async def tools_ended(
        self, run: Run, kind: str, calls: Sequence[ToolCall], seconds: float, error: str | None
    ) -> None:
        data = tools_data(kind, calls, seconds, error, self.cap)
        self._hold(self._entry(run, TOOLS, data, time.time() - seconds))

    async def model_call_ended(self, call: ModelCall) -> None:
        litellm_model = self.models.litellm_model(call.request.model)

        def record() -> Entry:
            data = model_call_data(call, litellm_model, self.cap)
            if size(data) > self.cap:  # the non-request fields alone: cut them too
                data = dict(bound(data, self.cap)[0])
            return self._entry(call.run, MODEL_CALL, data, call.started_at)

        await self._write(call.run.id, build=record)


def purge_chore(db: Database, settings: Settings) -> Chore | None:
    """The worker's chore that deletes run records past the retention period; checked
    every quarter of the period, at most hourly (None: records are kept)."""
    days = settings.model_call_retention_days
    if days <= 0:
        return None
    keep = days * 86400

    async def purge() -> None:
        removed = await db.run(run_records.purge, int(time.time() - keep))
        if removed:
            log.info("purged %d run records older than %g days", removed, days)

    return Chore("purge run records", min(3600.0, max(1.0, keep / 4)), purge)
