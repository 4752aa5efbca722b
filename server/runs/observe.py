"""Observers of run execution: where metrics, traces, usage records and the inspector's
model-call log hang, so that none of them adds code paths to the runner.

The runner reports four things: a run's status change, a model call's start and end
(with the exact request, the raw answer as it streamed, tokens, latency or the error),
and a batch of server-side tool calls' start and end. The ingestor reports each file it
finishes ingesting. Observers are awaited in order on
the event loop, so each hook must be quick; one that writes to the database hands the
write to a thread (`Database.run`). An observer that raises is logged and skipped: it
can never fail or stall a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.models import Run
from server.runs.model_client import Finish, ModelRequest, StreamEvent, TextDelta, ToolCallDelta

if TYPE_CHECKING:
    from server.tools.base import ToolCall

log = logging.getLogger("assistd.observe")


@dataclass
class ModelCall:
    """One model call of a run, filled in as it streams."""

    run: Run
    number: int  # 1 for the run's first model call in this execution, then 2, ...
    request: ModelRequest
    route: str = ""  # how the model name was routed (ModelClient.route_of)
    started_at: float = field(default_factory=time.time)
    first_token_at: float | None = None  # the first text or tool-call delta
    ended_at: float | None = None
    text: str = ""  # the model's raw text, as streamed (tool calls written as text too)
    tool_calls: dict[int, dict[str, str]] = field(default_factory=dict)  # index -> id/name/args
    finish: Finish | None = None
    error: tuple[str, str] | None = None  # (code, message) as the run's last_error has it
    cancelled: bool = False

    @property
    def latency(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    @property
    def usage(self) -> dict[str, int]:
        return self.finish.usage if self.finish else {}

    def answer_tool_calls(self) -> list[dict[str, str]]:
        return [self.tool_calls[i] for i in sorted(self.tool_calls)]


async def recorded(
    events: AsyncIterator[StreamEvent], call: ModelCall
) -> AsyncIterator[StreamEvent]:
    """The model's stream, passed through unchanged while `call` records what it said."""
    async for event in events:
        if call.first_token_at is None and not isinstance(event, Finish):
            call.first_token_at = time.time()
        if isinstance(event, TextDelta):
            call.text += event.text
        elif isinstance(event, ToolCallDelta):
            entry = call.tool_calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] = entry["id"] or (event.id or "")
            entry["name"] += event.name or ""
            entry["arguments"] += event.arguments
        else:
            call.finish = event
        yield event


class RunObserver:
    """Hooks with no-op defaults: an observer overrides what it needs."""

    async def run_status(self, run: Run, previous: str) -> None:
        """`run` just moved from `previous` to `run.status` (any move the runner made)."""

    async def model_call_started(self, call: ModelCall) -> None:
        """Before the request is sent."""

    async def model_call_ended(self, call: ModelCall) -> None:
        """After the stream ended, failed (`call.error`) or was cancelled."""

    async def tools_started(self, run: Run, kind: str, calls: Sequence[ToolCall]) -> None:
        """Before a server-side tool executes this turn's calls of it."""

    async def tools_ended(
        self, run: Run, kind: str, calls: Sequence[ToolCall], seconds: float, error: str | None
    ) -> None:
        """After they ran; `error` is the ToolFailed code when the run cannot go on."""

    async def ingest_ended(
        self, store_id: str, file_id: str, chunks: int, seconds: float, error: str | None
    ) -> None:
        """A file's ingestion into a vector store finished (`error`: its last_error code)."""


class Observers(RunObserver):
    """Several observers as one; each hook awaits them in order and contains failures."""

    def __init__(self, observers: Sequence[RunObserver] = ()) -> None:
        self.observers = list(observers)

    def add(self, observer: RunObserver) -> None:
        self.observers.append(observer)

    async def _each(self, hook: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                await getattr(observer, hook)(*args)
            except Exception:
                log.exception("observer %s failed in %s", type(observer).__name__, hook)

    async def run_status(self, run: Run, previous: str) -> None:
        await self._each("run_status", run, previous)

    async def model_call_started(self, call: ModelCall) -> None:
        await self._each("model_call_started", call)

    async def model_call_ended(self, call: ModelCall) -> None:
        await self._each("model_call_ended", call)

    async def tools_started(self, run: Run, kind: str, calls: Sequence[ToolCall]) -> None:
        await self._each("tools_started", run, kind, calls)

    async def tools_ended(
        self, run: Run, kind: str, calls: Sequence[ToolCall], seconds: float, error: str | None
    ) -> None:
        await self._each("tools_ended", run, kind, calls, seconds, error)

    async def ingest_ended(
        self, store_id: str, file_id: str, chunks: int, seconds: float, error: str | None
    ) -> None:
        await self._each("ingest_ended", store_id, file_id, chunks, seconds, error)
