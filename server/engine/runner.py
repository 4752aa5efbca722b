"""Advances one run, step by step, committing each step as it goes.

The runner owns a run while its worker holds the run's lease. It asks the model, turns
the streamed answer into a message (or a tool-calls step), publishes the same events
the hosted API streamed, and ends the run through the state machine. Cancellation
interrupts the model stream by cancelling the run's task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session, select

from retrieval.embedding import EmbeddingModelUnavailable, UnknownEmbeddingModel
from sandbox.sessions import SandboxManager, SandboxUnavailable
from server.config import Settings
from server.crud import messages as message_crud
from server.crud import runs as run_crud
from server.crud import steps as step_crud
from server.engine import code_interpreter as ci
from server.engine import file_search as fs
from server.engine import prompt, states
from server.engine.events import EventBus
from server.engine.model_client import (
    Finish,
    ModelClient,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    classify_error,
    could_be_text_tool_call,
    parse_text_tool_calls,
)
from server.ids import new_id, now
from server.models import Message, Run, RunStep
from server.storage import BlobStore

if TYPE_CHECKING:
    from server.engine.retrieval import Retrieval

log = logging.getLogger("assistd.runner")
T = TypeVar("T")
# Model calls one run may make while server-side tools keep answering them.
MAX_MODEL_TURNS = 20


@dataclass
class ToolCallState:
    id: str
    name: str = ""
    arguments: str = ""
    kind: str = "function"  # or "code_interpreter"/"file_search", run here, not by the client
    input_sent: str = ""  # code_interpreter input already streamed as deltas
    outputs: list[dict[str, Any]] = field(default_factory=list)  # or file_search results
    search: dict[str, Any] = field(default_factory=dict)  # file_search queries and options


@dataclass
class Progress:
    """What one model call has produced so far (kept to save it on cancel)."""

    message_id: str | None = None
    message_step_id: str | None = None
    text: str = ""
    held: str = ""  # text held back while it may still be a JSON tool call
    tool_step_id: str | None = None
    calls: dict[int, ToolCallState] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)  # image_file parts of the open message


def add_usage(total: dict[str, int] | None, more: dict[str, int]) -> dict[str, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: (total or {}).get(k, 0) + more.get(k, 0) for k in keys}


# --- database work (runs in a worker thread, one short transaction each) ---------------


def _open_message(
    session: Session, run: Run, images: list[str] | None = None
) -> tuple[RunStep, Message]:
    message = Message(
        id=new_id("message"),
        project=run.project,
        thread_id=run.thread_id,
        created_at=now(),
        role="assistant",
        content=[{"type": "image_file", "image_file": {"file_id": f}} for f in images or []],
        attachments=[],
        assistant_id=run.assistant_id,
        run_id=run.id,
        status="in_progress",
        meta={},
    )
    session.add(message)
    step = step_crud.create(
        session,
        run,
        "message_creation",
        {"type": "message_creation", "message_creation": {"message_id": message.id}},
    )
    session.commit()
    return step, message


def _open_tool_step(session: Session, run: Run) -> RunStep:
    step = step_crud.create(session, run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
    session.commit()
    return step


def _text_content(
    text: str,
    images: list[str] | None = None,
    files: dict[str, str] | None = None,
    citations: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"type": "image_file", "image_file": {"file_id": file_id}} for file_id in images or []
    ]
    annotations = (citations or []) + (ci.annotate(text, files) if files else [])
    annotations.sort(key=lambda a: a["start_index"])
    if text or not parts:
        parts.append({"type": "text", "text": {"value": text, "annotations": annotations}})
    return parts


def _close_message(
    session: Session,
    progress: Progress,
    usage: dict[str, int] | None,
    incomplete_reason: str | None,
    files: dict[str, str] | None = None,
    citations: list[dict[str, Any]] | None = None,
) -> tuple[RunStep, Message]:
    ts = now()
    message = session.exec(select(Message).where(Message.id == progress.message_id)).one()
    message.content = _text_content(progress.text, progress.images, files, citations)
    if incomplete_reason:
        message.status, message.incomplete_at = "incomplete", ts
        message.incomplete_details = {"reason": incomplete_reason}
    else:
        message.status, message.completed_at = "completed", ts
    step = session.exec(select(RunStep).where(RunStep.id == progress.message_step_id)).one()
    step.status, step.completed_at, step.usage = "completed", ts, usage
    session.add(message)
    session.add(step)
    session.commit()
    return step, message


def _tool_calls_details(progress: Progress) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    for _, call in sorted(progress.calls.items()):
        if call.kind == fs.TOOL_NAME:
            details.append(
                {
                    "id": call.id,
                    "type": "file_search",
                    "file_search": {
                        "ranking_options": call.search.get("ranking_options") or fs.DEFAULT_RANKING,
                        "results": call.outputs,
                        # Extension: the queries the model searched with.
                        "queries": call.search.get("queries", []),
                    },
                }
            )
        elif call.kind == ci.TOOL_NAME:
            details.append(
                {
                    "id": call.id,
                    "type": "code_interpreter",
                    "code_interpreter": {
                        "input": ci.code_from_arguments(call.arguments),
                        "outputs": call.outputs,
                    },
                }
            )
        else:
            details.append(
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments, "output": None},
                }
            )
    return details


def _save_tool_step(
    session: Session, progress: Progress, usage: dict[str, int] | None, done: bool = False
) -> RunStep:
    step = session.exec(select(RunStep).where(RunStep.id == progress.tool_step_id)).one()
    step.step_details = {"type": "tool_calls", "tool_calls": _tool_calls_details(progress)}
    step.usage = usage
    if done:
        step.status, step.completed_at = "completed", now()
    session.add(step)
    session.commit()
    return step


def _save_partial_text(session: Session, progress: Progress) -> None:
    if progress.message_id and progress.text:
        message = session.exec(select(Message).where(Message.id == progress.message_id)).one()
        message.content = _text_content(progress.text, progress.images)
        session.add(message)
        session.commit()


class Runner:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        bus: EventBus,
        models: ModelClient,
        owner: str,
        *,
        blobs: BlobStore,
        sandbox: SandboxManager | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.bus = bus
        self.models = models
        self.owner = owner
        self.blobs = blobs
        self.sandbox = sandbox
        self.sandbox_problem: str | None = None if sandbox else "the sandbox is turned off"
        self.sandbox_packages: list[str] | None = None  # the image's record, set by the app
        self.retrieval: Retrieval | None = None  # set by the app; file_search needs it
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.cancel_requested: set[str] = set()
        self.progress: dict[str, Progress] = {}
        self.outputs: dict[str, ci.RunOutputs] = {}

    # -- plumbing --------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def work() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session, *args, **kwargs)

        return await asyncio.to_thread(work)

    def emit(self, run: Run, event: str, data: Any) -> None:
        self.bus.publish(run.id, event, data)

    def emit_run(self, run: Run) -> None:
        self.emit(run, f"thread.run.{run.status}", run_crud.to_api(run))

    def start(self, run_id: str) -> asyncio.Task[None]:
        """Execute a run this process holds the lease of, as a background task."""
        task = asyncio.create_task(self.execute(run_id), name=f"run {run_id}")
        self.tasks[run_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(run_id, None))
        return task

    def request_cancel(self, run_id: str) -> bool:
        """Interrupt the run's task if this process is executing it."""
        task = self.tasks.get(run_id)
        if task is None or task.done():
            return False
        if run_id in self.cancel_requested:
            # Once only: a second cancel (the worker also sees status `cancelling`) would
            # land inside the cancel handling itself and strand the run in `cancelling`.
            return True
        self.cancel_requested.add(run_id)
        task.cancel()
        return True

    async def transition(self, run: Run, target: str, **values: Any) -> bool:
        ok = await self.db(lambda s: run_crud.transition(s, run, target, **values))
        if not ok:
            # Someone else moved the run (a cancel, usually); `run` now holds the truth.
            fresh = await self.db(run_crud.load, run.id)
            run.__dict__.update({k: getattr(fresh, k) for k in Run.model_fields})
        return ok

    # -- execution -------------------------------------------------------------------

    async def execute(self, run_id: str) -> None:
        try:
            await self._advance(run_id)
        except asyncio.CancelledError:
            if run_id not in self.cancel_requested:
                raise  # shutting down: the lease will lapse and another worker takes over
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._finish_cancel(run_id)
        except Exception as exc:  # a bug must end the run, not leave it in_progress
            log.exception("run %s crashed", run_id)
            await self._fail(run_id, "server_error", f"Internal error: {exc.__class__.__name__}")
        finally:
            self.cancel_requested.discard(run_id)
            self.progress.pop(run_id, None)
            self.outputs.pop(run_id, None)

    async def _advance(self, run_id: str) -> None:
        run = await self.db(run_crud.load, run_id)
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
        uses_code = any(t["type"] == ci.TOOL_NAME for t in run.tools)
        if uses_code and self.sandbox_problem:
            message = f"code_interpreter is not available on this server: {self.sandbox_problem}"
            await self._end(
                run, states.FAILED, last_error={"code": "server_error", "message": message}
            )
            return
        for _ in range(MAX_MODEL_TURNS):
            if not await self._turn(run, uses_code):
                return
        await self._end(
            run,
            states.FAILED,
            last_error={
                "code": "server_error",
                "message": f"The run stopped after {MAX_MODEL_TURNS} model calls in a row.",
            },
        )

    async def _turn(self, run: Run, uses_code: bool) -> bool:
        """One model call and what follows it; True when the run goes on to another call
        (server-side tools answered), False when it has ended or waits for the client."""
        messages, fits = await self.db(prompt.build, run)
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
        inputs: list[ci.InputFile] = []
        if uses_code:
            inputs = await self.db(ci.input_files, run)
            tools.append(ci.chat_tool([f.name for f in inputs], self.sandbox_packages))
        if self.retrieval is not None and any(t["type"] == fs.TOOL_NAME for t in run.tools):
            tools.append(fs.chat_tool())
        request = ModelRequest(
            model=run.model,
            messages=messages,
            tools=tools or None,
            tool_choice=prompt.chat_tool_choice(run) if tools else None,
            parallel_tool_calls=run.parallel_tool_calls,
            response_format=prompt.chat_response_format(run),
            temperature=run.temperature,
            top_p=run.top_p,
            max_tokens=max_tokens,
            reasoning_effort=run.reasoning_effort,
        )
        progress = self.progress[run.id] = Progress()
        outputs = self.outputs.setdefault(run.id, ci.RunOutputs())
        try:
            finish = await self._stream(
                run, request, progress, {t["function"]["name"] for t in tools}
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code, message = classify_error(exc)
            log.info("run %s: model call failed: %s", run.id, message)
            await self.db(_save_partial_text, progress)
            await self._end(run, states.FAILED, last_error={"code": code, "message": message})
            return False
        usage = add_usage(run.usage, finish.usage)
        await self.db(lambda s: run_crud.set_fields(s, run, usage=usage))
        if progress.calls:
            code_calls = [c for c in progress.calls.values() if c.kind == ci.TOOL_NAME]
            search_calls = [c for c in progress.calls.values() if c.kind == fs.TOOL_NAME]
            if search_calls:
                try:
                    await self._search(run, progress, search_calls)
                except (UnknownEmbeddingModel, EmbeddingModelUnavailable) as exc:
                    # A store's model is gone or broken: the operator's problem, said as
                    # such, rather than a crash report.
                    log.warning("run %s: file_search failed: %s", run.id, exc)
                    await self._end(
                        run, states.FAILED, last_error={"code": "server_error", "message": str(exc)}
                    )
                    return False
            if code_calls:
                await self._run_code(run, progress, code_calls, inputs, outputs)
            if len(code_calls) + len(search_calls) < len(progress.calls):
                await self._require_action(run, progress, finish)
                return False
            step = await self.db(_save_tool_step, progress, finish.usage or None, True)
            self.emit(run, "thread.run.step.completed", step_crud.to_api(step))
            return True
        truncated = finish.reason == "length"
        await self._close_message(run, progress, finish, "max_tokens" if truncated else None)
        if truncated:
            await self._end(
                run, states.INCOMPLETE, incomplete_details={"reason": "max_completion_tokens"}
            )
        else:
            await self._end(run, states.COMPLETED)
        return False

    async def _run_code(
        self,
        run: Run,
        progress: Progress,
        calls: list[ToolCallState],
        inputs: list[ci.InputFile],
        outputs: ci.RunOutputs,
    ) -> None:
        """Execute code_interpreter calls in the thread's sandbox session, streaming each
        call's outputs as a step delta. Errors in the code are outputs, not failures."""
        assert self.sandbox is not None
        sandbox, key = self.sandbox, run.thread_id
        skip = {f.name for f in inputs}
        for call in calls:
            started = time.perf_counter()
            self._flush_code_input(run, progress, call)
            code = ci.code_from_arguments(call.arguments)
            try:
                result = await asyncio.to_thread(ci.execute, sandbox, self.blobs, key, inputs, code)
            except asyncio.CancelledError:
                sandbox.interrupt(key)
                raise
            except (SandboxUnavailable, OSError, RuntimeError, TimeoutError) as exc:
                result = ci.ExecResult(logs="", error=f"The sandbox failed: {exc}")
            call.outputs = await self.db(
                ci.store_outputs, sandbox, self.blobs, run, key, result, outputs, skip
            )
            index = next(i for i, c in progress.calls.items() if c is call)
            self.emit(
                run,
                "thread.run.step.delta",
                {
                    "id": progress.tool_step_id,
                    "object": "thread.run.step.delta",
                    "delta": {
                        "step_details": {
                            "type": "tool_calls",
                            "tool_calls": [
                                {
                                    "index": index,
                                    "type": "code_interpreter",
                                    "code_interpreter": {
                                        "outputs": [
                                            {"index": n, **item}
                                            for n, item in enumerate(call.outputs)
                                        ]
                                    },
                                }
                            ],
                        }
                    },
                },
            )
            log.info(
                "run %s: code_interpreter call %s answered in %.1f ms",
                run.id,
                call.id,
                (time.perf_counter() - started) * 1000,
            )

    async def _search(self, run: Run, progress: Progress, calls: list[ToolCallState]) -> None:
        """Answer file_search calls from the run's vector stores, after waiting for their
        files to finish ingesting (as the hosted API did), and keep a trace of each."""
        assert self.retrieval is not None
        retrieval, settings = self.retrieval, fs.settings_for(run)
        refs = await self.db(fs.store_refs, run)
        await self._wait_for_ingestion([store_id for store_id, _ in refs])
        for call in calls:
            started = time.perf_counter()
            queries = fs.queries_from_arguments(call.arguments)
            trace = None
            if refs and queries:
                trace = await asyncio.to_thread(
                    retrieval.search,
                    refs,
                    queries,
                    max_num_results=settings.max_num_results,
                    score_threshold=settings.score_threshold,
                    ranker=settings.ranker,
                )
            call.outputs = fs.step_results(trace.results) if trace else []
            call.search = {"queries": queries, "ranking_options": settings.ranking_options}
            await self.db(
                fs.save_trace, run, progress.tool_step_id, call.id, refs, call.search, trace
            )
            index = next(i for i, c in progress.calls.items() if c is call)
            results = [{k: v for k, v in r.items() if k != "content"} for r in call.outputs]
            self._step_delta(
                run,
                progress,
                {
                    "index": index,
                    "type": "file_search",
                    "file_search": {
                        "ranking_options": settings.ranking_options,
                        "results": results,
                    },
                },
            )
            log.info(
                "run %s: file_search call %s: %d results in %.1f ms",
                run.id,
                call.id,
                len(call.outputs),
                (time.perf_counter() - started) * 1000,
            )

    async def _wait_for_ingestion(self, store_ids: list[str]) -> None:
        deadline = time.monotonic() + self.settings.ingest_wait_seconds
        while store_ids and time.monotonic() < deadline:
            if not await self.db(fs.ingesting, store_ids):
                return
            await asyncio.sleep(0.2)

    async def _citations(self, run: Run, progress: Progress) -> list[dict[str, Any]]:
        """file_citation annotations for the reply's source markers (appending markers
        when the model cited nothing), streamed as one last delta before completion."""
        if not any(t["type"] == fs.TOOL_NAME for t in run.tools):
            return []
        sources = await self.db(fs.run_sources, run)
        appended, citations = fs.cite(progress.text, sources)
        if not citations:
            return []
        progress.text += appended
        text: dict[str, Any] = {"annotations": [{"index": i, **a} for i, a in enumerate(citations)]}
        if appended:
            text["value"] = appended
        self.emit(
            run,
            "thread.message.delta",
            {
                "id": progress.message_id,
                "object": "thread.message.delta",
                "delta": {
                    "content": [{"index": len(progress.images), "type": "text", "text": text}]
                },
            },
        )
        return citations

    async def _stream(
        self, run: Run, request: ModelRequest, progress: Progress, function_names: set[str]
    ) -> Finish:
        finish = Finish(None)
        hold = bool(function_names)  # tool calls written as text must not leak as text
        async for event in self.models.stream(request):
            if isinstance(event, TextDelta):
                if hold:
                    progress.held += event.text
                    if could_be_text_tool_call(progress.held):
                        continue
                    hold, text, progress.held = False, progress.held, ""
                    await self._text(run, progress, text)
                else:
                    await self._text(run, progress, event.text)
            elif isinstance(event, ToolCallDelta):
                await self._tool_delta(run, progress, event)
            else:
                finish = event
        if progress.held:
            parsed = (
                None if progress.calls else parse_text_tool_calls(progress.held, function_names)
            )
            if parsed:
                for index, (name, arguments) in enumerate(parsed):
                    delta = ToolCallDelta(index, None, name, arguments)
                    await self._tool_delta(run, progress, delta)
            else:
                await self._text(run, progress, progress.held)
            progress.held = ""
        return finish

    async def _ensure_message(self, run: Run, progress: Progress) -> None:
        """Open the assistant message (and its step) on first output; images the sandbox
        produced since the last message lead its content, as in the hosted API."""
        if progress.message_id is not None:
            return
        outputs = self.outputs.get(run.id)
        images = list(outputs.images) if outputs else []
        if outputs:
            outputs.images.clear()
        step, message = await self.db(_open_message, run, images)
        progress.message_id, progress.message_step_id = message.id, step.id
        progress.images = images
        step_api = step_crud.to_api(step)
        self.emit(run, "thread.run.step.created", step_api)
        self.emit(run, "thread.run.step.in_progress", step_api)
        message_api = message_crud.to_api(message)
        self.emit(run, "thread.message.created", message_api)
        self.emit(run, "thread.message.in_progress", message_api)
        if images:
            parts = [
                {"index": i, "type": "image_file", "image_file": {"file_id": file_id}}
                for i, file_id in enumerate(images)
            ]
            self.emit(
                run,
                "thread.message.delta",
                {"id": message.id, "object": "thread.message.delta", "delta": {"content": parts}},
            )

    async def _text(self, run: Run, progress: Progress, text: str) -> None:
        if not text:
            return
        await self._ensure_message(run, progress)
        progress.text += text
        part = {"type": "text", "text": {"value": text, "annotations": []}}
        self.emit(
            run,
            "thread.message.delta",
            {
                "id": progress.message_id,
                "object": "thread.message.delta",
                "delta": {"content": [{"index": len(progress.images), **part}]},
            },
        )

    def _step_delta(self, run: Run, progress: Progress, fragment: dict[str, Any]) -> None:
        self.emit(
            run,
            "thread.run.step.delta",
            {
                "id": progress.tool_step_id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [fragment]}},
            },
        )

    async def _tool_delta(self, run: Run, progress: Progress, delta: ToolCallDelta) -> None:
        if progress.tool_step_id is None:
            if progress.message_id is not None:
                # Text before the tool calls is its own, finished message.
                await self._close_message(run, progress, Finish(None), None)
            step = await self.db(_open_tool_step, run)
            progress.tool_step_id = step.id
            step_api = step_crud.to_api(step)
            self.emit(run, "thread.run.step.created", step_api)
            self.emit(run, "thread.run.step.in_progress", step_api)
        call = progress.calls.get(delta.index)
        created = call is None
        if call is None:
            call = progress.calls[delta.index] = ToolCallState(id=delta.id or new_id("call"))
            if delta.name == ci.TOOL_NAME and self.sandbox is not None:
                call.kind = ci.TOOL_NAME
            elif delta.name == fs.TOOL_NAME and self.retrieval is not None:
                call.kind = fs.TOOL_NAME
        if delta.name:
            call.name += delta.name
        call.arguments += delta.arguments
        if call.kind == fs.TOOL_NAME:
            if created:
                fragment = {"index": delta.index, "type": "file_search", "id": call.id}
                self._step_delta(run, progress, {**fragment, "file_search": {}})
            return
        if call.kind == ci.TOOL_NAME:
            if created:
                self._step_delta(
                    run,
                    progress,
                    {
                        "index": delta.index,
                        "type": "code_interpreter",
                        "id": call.id,
                        "code_interpreter": {"input": "", "outputs": []},
                    },
                )
            code = ci.partial_code(call.arguments)
            if len(code) > len(call.input_sent):
                self._code_input(run, progress, delta.index, call, code)
            return
        fragment: dict[str, Any] = {"index": delta.index, "type": "function"}
        function: dict[str, Any] = {"arguments": delta.arguments}
        if created:
            fragment["id"] = call.id
            function["output"] = None
        if delta.name:
            function["name"] = delta.name
        fragment["function"] = function
        self._step_delta(run, progress, fragment)

    def _code_input(
        self, run: Run, progress: Progress, index: int, call: ToolCallState, code: str
    ) -> None:
        more, call.input_sent = code[len(call.input_sent) :], code
        self._step_delta(
            run,
            progress,
            {"index": index, "type": "code_interpreter", "code_interpreter": {"input": more}},
        )

    def _flush_code_input(self, run: Run, progress: Progress, call: ToolCallState) -> None:
        """The rest of the input once the call is complete (all of it for plain code)."""
        code = ci.code_from_arguments(call.arguments)
        if code.startswith(call.input_sent) and len(code) > len(call.input_sent):
            index = next(i for i, c in progress.calls.items() if c is call)
            self._code_input(run, progress, index, call, code)

    async def _close_message(
        self, run: Run, progress: Progress, finish: Finish, incomplete_reason: str | None
    ) -> None:
        # The model may have said nothing at all: still leave an (empty) assistant message.
        await self._ensure_message(run, progress)
        usage = None if progress.calls else (finish.usage or None)
        outputs = self.outputs.get(run.id)
        files = outputs.files if outputs else None
        citations = await self._citations(run, progress) if not incomplete_reason else []
        step, message = await self.db(
            _close_message, progress, usage, incomplete_reason, files, citations
        )
        event = "thread.message.incomplete" if incomplete_reason else "thread.message.completed"
        self.emit(run, event, message_crud.to_api(message))
        self.emit(run, "thread.run.step.completed", step_crud.to_api(step))
        progress.message_id = progress.message_step_id = None
        progress.text = ""
        progress.images = []

    async def _require_action(self, run: Run, progress: Progress, finish: Finish) -> None:
        await self.db(_save_tool_step, progress, finish.usage or None)
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for _, c in sorted(progress.calls.items())
            if c.kind == "function"
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

    async def _end(self, run: Run, target: str, **values: Any) -> None:
        """Move the run to a terminal status and tell streams how its open step and
        message ended (step failed/cancelled/expired, message incomplete)."""
        if run.status not in states.TERMINAL and await self._finish(run, target, **values):
            return
        if run.status == states.CANCELLING and target != states.CANCELLED:
            await self._finish_cancel(run.id)

    async def _finish(self, run: Run, target: str, **values: Any) -> bool:
        def open_items(session: Session) -> tuple[list[str], list[str]]:
            step_ids = [s.id for s in step_crud.in_flight(session, run.id)]
            message_ids = list(
                session.exec(
                    select(Message.id).where(
                        Message.run_id == run.id, Message.status == "in_progress"
                    )
                )
            )
            return step_ids, message_ids

        step_ids, message_ids = await self.db(open_items)
        if not await self.transition(run, target, **values):
            return False

        def reload(session: Session) -> tuple[list[RunStep], list[Message]]:
            steps = list(session.exec(select(RunStep).where(RunStep.id.in_(step_ids))))  # type: ignore[attr-defined]
            msgs = list(session.exec(select(Message).where(Message.id.in_(message_ids))))  # type: ignore[attr-defined]
            return steps, msgs

        if step_ids or message_ids:
            steps, msgs = await self.db(reload)
            for step in steps:
                self.emit(run, f"thread.run.step.{step.status}", step_crud.to_api(step))
            for message in msgs:
                self.emit(run, f"thread.message.{message.status}", message_crud.to_api(message))
        self.emit_run(run)
        return True

    async def _fail(self, run_id: str, code: str, message: str) -> None:
        run = await self.db(run_crud.load, run_id)
        if run.status in states.TERMINAL:
            return
        await self._end(run, states.FAILED, last_error={"code": code, "message": message})

    async def _finish_cancel(self, run_id: str) -> None:
        """cancelling -> cancelled, keeping what the model had written so far."""
        progress = self.progress.get(run_id)
        if progress is not None:
            await self.db(_save_partial_text, progress)
        run = await self.db(run_crud.load, run_id)
        if run.status in (states.QUEUED, states.IN_PROGRESS, states.REQUIRES_ACTION):
            await self.transition(run, states.CANCELLING)  # refreshes `run` if it lost a race
        if run.status != states.CANCELLING:
            return
        self.emit_run(run)
        await self._finish(run, states.CANCELLED)
