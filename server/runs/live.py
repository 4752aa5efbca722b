"""The runs this process is executing now: one entry per run, from its task's start to
its end. The worker renews their leases and cancels them; the runner keeps each run's
server-side tools and current model call (turn) here."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.tools.base import ToolUse

if TYPE_CHECKING:
    from server.runs.turn import Turn


@dataclass
class LiveRun:
    task: asyncio.Task[None]
    cancel_requested: bool = False
    tools: dict[str, ToolUse] = field(default_factory=dict)  # by name, for this run
    turn: Turn | None = None  # the model call in flight: its text is kept on cancel
    model_calls: int = 0  # model calls made so far in this execution


class LiveRuns:
    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}

    def start(self, run_id: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"run {run_id}")
        self._runs[run_id] = LiveRun(task)
        task.add_done_callback(lambda _: self._runs.pop(run_id, None))
        return task

    def get(self, run_id: str) -> LiveRun | None:
        return self._runs.get(run_id)

    def ids(self) -> list[str]:
        return list(self._runs)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [live.task for live in self._runs.values()]

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def __len__(self) -> int:
        return len(self._runs)

    def interrupt(self, run_id: str) -> bool:
        """Cancel the run's task if this process executes it (once: a second cancel, the
        worker also seeing status `cancelling`, would land inside the cancel handling
        itself and strand the run in `cancelling`)."""
        live = self._runs.get(run_id)
        if live is None or live.task.done():
            return False
        if not live.cancel_requested:
            live.cancel_requested = True
            live.task.cancel()
        return True
