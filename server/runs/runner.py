"""Advances one run through its life, committing each step as it goes.

The runner owns a run while its worker holds the run's lease: queued -> in_progress,
then model calls (turns, server/runs/turn.py) until the run ends, waits for the
client's tool outputs, or is cancelled. Calls to server-side tools are executed between
turns through the ServerTool seam (server/tools/base.py); the runner itself knows no
tool by name. Every status change goes through the state machine (server/run_states.py)
as a compare-and-set, and cancellation interrupts the model stream by cancelling the
run's task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from server import run_states as states
from server.config import Settings
from server.crud import messages as message_crud
from server.crud import runs as run_crud
from server.crud import steps as step_crud
from server.crud.runs import RunGone
from server.db import Database
from server.ids import now
from server.models import Run
from server.runs import leases, observe, prompt, writes
from server.runs.events import EventBus
from server.runs.live import LiveRun, LiveRuns
from server.runs.model_client import Finish, ModelClient, ModelRequest, classify_error
from server.runs.observe import ModelCall, Observers
from server.runs.turn import Turn
from server.tools.base import ServerTool, ToolFailed

log = logging.getLogger("assistd.runner")
# Model calls one run may make while server-side tools keep answering them.
MAX_MODEL_TURNS = 20
# The `error` event a stream gets when the run's thread is deleted under it (the SDK
# raises an APIError carrying it).
THREAD_DELETED = {
    "error": {
        "message": "The run's thread was deleted while the run was executing.",
        "type": "invalid_request_error",
        "param": None,
        "code": "thread_deleted",
    }
}


def add_usage(total: dict[str, int] | None, more: dict[str, int]) -> dict[str, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: (total or {}).get(k, 0) + more.get(k, 0) for k in keys}


class Runner:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        bus: EventBus,
        models: ModelClient,
        owner: str,
        tools: Mapping[str, ServerTool],
        observers: Observers | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.bus = bus
        self.models = models
        self.owner = owner
        self.tools = dict(tools)
        self.live = LiveRuns()
        self.observers = observers or Observers()

    # -- plumbing --------------------------------------------------------------------

    def emit(self, run: Run, event: str, data: Any) -> None:
        self.bus.publish(run.id, event, data)

    def emit_run(self, run: Run) -> None:
        self.emit(run, f"thread.run.{run.status}", run_crud.to_api(run))

    def start(self, run_id: str) -> asyncio.Task[None]:
        """Execute a run this process holds the lease of, as a background task."""
        return self.live.start(run_id, self.execute(run_id))

    async def claim_and_start(self, run_id: str) -> bool:
        """Take a queued or cancelling run's lease if it is free, and execute it here."""
        statuses = (states.QUEUED, states.CANCELLING)
        lease = self.settings.lease_seconds
        if await self.db.run(leases.claim, run_id, self.owner, lease, statuses):
            self.start(run_id)
            return True
        return False

    async def cancel(self, run: Run) -> bool:
        """A client's cancel: move the run to cancelling, then interrupt it if this
        process executes it, or finish the cancel now if nobody holds its lease (queued,
        or waiting for tool outputs); a live worker elsewhere notices on its own. False
        (nothing done) when the run can no longer be cancelled."""
        for _ in range(3):  # the run may move under us (finish, fail); look again
            if run.status not in states.CANCELLABLE:
                return False
            if await self.transition(run, states.CANCELLING):
                break
        if not self.live.interrupt(run.id):
            await self.claim_and_start(run.id)
        return True

    async def transition(self, run: Run, target: str, **values: Any) -> bool:
        """Compare-and-set `run` to `target`; False when someone else moved it first (a
        cancel, usually), and `run` then holds the truth."""
        previous = run.status
        moved = await self.db.run(lambda s: run_crud.transition(s, run, target, **values))
        if moved:
            await self.observers.run_status(run, previous)
        return moved

    # -- execution -------------------------------------------------------------------

    async def execute(self, run_id: str) -> None:
        try:
            await self._advance(run_id)
        except asyncio.CancelledError:
            live = self.live.get(run_id)
            if live is None or not live.cancel_requested:
                raise  # shutting down: the lease will lapse and another worker takes over
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._ended_quietly(run_id, self._finish_cancel(run_id))
        except Exception as exc:  # a bug must end the run, not leave it in_progress
            if isinstance(exc, RunGone) or not await self.db.run(run_crud.exists, run_id):
                self._gone(run_id)
                return
            log.exception("run %s crashed", run_id)
            message = f"Internal error: {exc.__class__.__name__}"
            await self._ended_quietly(run_id, self._fail(run_id, "server_error", message))

    async def _ended_quietly(self, run_id: str, ending: Coroutine[Any, Any, None]) -> None:
        """Await an ending of the run, which may find its rows deleted under it; nothing
        may escape the run's task, where no one would see it."""
        try:
            await ending
        except Exception as exc:
            if isinstance(exc, RunGone) or not await self.db.run(run_crud.exists, run_id):
                self._gone(run_id)
            else:
                log.exception("run %s: ending it failed", run_id)

    def _gone(self, run_id: str) -> None:
        """The run's thread was deleted while it executed: its rows went with it, so
        there is nothing left to end; a stream still open hears why it stops."""
        log.info("run %s ended: its thread was deleted", run_id)
        self.bus.publish(run_id, "error", THREAD_DELETED)

    async def _advance(self, run_id: str) -> None:
        run = await self.db.run(run_crud.load, run_id)
        if run.status == states.CANCELLING:
            await self._finish_cancel(run_id)
            return
        if run.status != states.QUEUED:
            return
        if not await self.transition(run, states.IN_PROGRESS, expires_at=None):
            if run.status == states.CANCELLING:
                await self._finish_cancel(run_id)
            return
        self.emit_run(run)
        names = [t["type"] for t in run.tools if t["type"] in self.tools]
        for name in names:
            problem = self.tools[name].problem()
            if problem:
                message = f"{name} is not available on this server: {problem}"
                await self._end(
                    run, states.FAILED, last_error={"code": "server_error", "message": message}
                )
                return
        live = self.live.get(run_id)
        assert live is not None, "a run executes as a task its LiveRuns entry holds"
        live.tools = {n: tool.use(run, self.db) for n, tool in self.tools.items() if n in names}
        for _ in range(MAX_MODEL_TURNS):
            if not await self._turn(run, live):
                return
        await self._end(
            run,
            states.FAILED,
            last_error={
                "code": "server_error",
                "message": f"The run stopped after {MAX_MODEL_TURNS} model calls in a row.",
            },
        )

    async def _turn(self, run: Run, live: LiveRun) -> bool:
        """One model call and what follows it; True when the run goes on to another call
        (server-side tools answered), False when it has ended or waits for the client."""
        messages, fits = await self.db.run(prompt.build, run, self.tools)
        if not fits:
            await self._end(
                run, states.INCOMPLETE, incomplete_details={"reason": "max_prompt_tokens"}
            )
            return False
        max_tokens = None
        if run.max_completion_tokens:
            used = (run.usage or {}).get("completion_tokens", 0)
            max_tokens = run.max_completion_tokens - used
            if max_tokens <= 0:
                await self._end(
                    run, states.INCOMPLETE, incomplete_details={"reason": "max_completion_tokens"}
                )
                return False
        tools = prompt.chat_tools(run)
        function_names = {t["function"]["name"] for t in tools}
        tools += [await use.offer() for use in live.tools.values()]
        request = ModelRequest(
            model=run.model,
            messages=messages,
            tools=tools or None,
            tool_choice=prompt.chat_tool_choice(run, self.tools),
            parallel_tool_calls=run.parallel_tool_calls,
            response_format=prompt.chat_response_format(run),
            temperature=run.temperature,
            top_p=run.top_p,
            max_tokens=max_tokens,
            reasoning_effort=run.reasoning_effort,
        )
        turn = live.turn = Turn(run, self.db, lambda e, d: self.emit(run, e, d), live.tools)
        live.model_calls += 1
        call = ModelCall(run, live.model_calls, request, self.models.route_of(request.model))
        await self.observers.model_call_started(call)
        try:
            finish = await turn.stream(
                observe.recorded(self.models.stream(request), call), function_names
            )
        except asyncio.CancelledError:
            call.cancelled, call.ended_at = True, time.time()
            await self.observers.model_call_ended(call)
            raise
        except Exception as exc:
            code, message = classify_error(exc)
            call.error, call.ended_at = (code, message), time.time()
            await self.observers.model_call_ended(call)
            log.info("run %s: model call failed: %s", run.id, message)
            await turn.save_partial_text()
            await self._end(run, states.FAILED, last_error={"code": code, "message": message})
            return False
        call.ended_at = time.time()
        await self.observers.model_call_ended(call)
        usage = add_usage(run.usage, finish.usage)
        await self.db.run(lambda s: run_crud.set_fields(s, run, usage=usage))
        if turn.calls:
            for use, calls in turn.server_calls():
                kind = next(name for name, u in live.tools.items() if u is use)
                await self.observers.tools_started(run, kind, calls)
                started = time.perf_counter()
                try:
                    await use.execute(calls, turn)
                except ToolFailed as failed:
                    seconds = time.perf_counter() - started
                    await self.observers.tools_ended(run, kind, calls, seconds, failed.code)
                    error = {"code": failed.code, "message": failed.message}
                    await self._end(run, states.FAILED, last_error=error)
                    return False
                seconds = time.perf_counter() - started
                await self.observers.tools_ended(run, kind, calls, seconds, None)
            if turn.function_calls():
                await self._require_action(run, turn, finish)
                return False
            step = await turn.save_tool_step(finish.usage or None, done=True)
            self.emit(run, "thread.run.step.completed", step_crud.to_api(step))
            return True
        truncated = finish.reason == "length"
        await turn.close_message(finish, "max_tokens" if truncated else None)
        if truncated:
            await self._end(
                run, states.INCOMPLETE, incomplete_details={"reason": "max_completion_tokens"}
            )
        else:
            await self._end(run, states.COMPLETED)
        return False

    async def _require_action(self, run: Run, turn: Turn, finish: Finish) -> None:
        await turn.save_tool_step(finish.usage or None)
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in turn.function_calls()
        ]
        required = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}
        ok = await self.transition(
            run,
            states.REQUIRES_ACTION,
            required_action=required,
            expires_at=now() + self.settings.requires_action_timeout,
            lease_owner=None,
            lease_expires_at=None,
        )
        if ok:
            self.emit_run(run)
        elif run.status == states.CANCELLING:
            await self._finish_cancel(run.id)

    # -- ending ----------------------------------------------------------------------

    async def _end(self, run: Run, target: str, **values: Any) -> None:
        """Move the run to a terminal status and tell streams how its open step and
        message ended (step failed/cancelled/expired, message incomplete)."""
        if run.status not in states.TERMINAL and await self._finish(run, target, **values):
            return
        if run.status == states.CANCELLING and target != states.CANCELLED:
            await self._finish_cancel(run.id)

    async def _finish(self, run: Run, target: str, **values: Any) -> bool:
        step_ids, message_ids = await self.db.run(writes.open_items, run.id)
        if not await self.transition(run, target, **values):
            return False
        if step_ids or message_ids:
            steps, messages = await self.db.run(writes.reload_items, step_ids, message_ids)
            for step in steps:
                self.emit(run, f"thread.run.step.{step.status}", step_crud.to_api(step))
            for message in messages:
                self.emit(run, f"thread.message.{message.status}", message_crud.to_api(message))
        self.emit_run(run)
        return True

    async def _fail(self, run_id: str, code: str, message: str) -> None:
        run = await self.db.run(run_crud.load, run_id)
        if run.status in states.TERMINAL:
            return
        await self._end(run, states.FAILED, last_error={"code": code, "message": message})

    async def _finish_cancel(self, run_id: str) -> None:
        """cancelling -> cancelled, keeping what the model had written so far."""
        live = self.live.get(run_id)
        if live is not None and live.turn is not None:
            await live.turn.save_partial_text()
        run = await self.db.run(run_crud.load, run_id)
        if run.status in states.CANCELLABLE:
            await self.transition(run, states.CANCELLING)  # refreshes `run` if it lost a race
        if run.status != states.CANCELLING:
            return
        self.emit_run(run)
        await self._finish(run, states.CANCELLED)
