"""/v1/threads/{thread_id}/runs and /v1/threads/runs (create thread and run)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from retrieval.embedding import EmbeddingModels
from server.crud import assistants, threads
from server.crud import runs as crud
from server.crud import steps as step_crud
from server.crud.pagination import paginate
from server.deps import DB, Embeddings, Listing, Project, RunnerDep, WorkerDep
from server.errors import bad_request
from server.ids import new_id
from server.models import Run, RunStep, Thread
from server.protocol.common import ListPage
from server.protocol.runs import (
    RunCreate,
    RunObject,
    RunOptions,
    RunUpdate,
    SubmitToolOutputs,
    ThreadAndRunCreate,
)
from server.protocol.threads import ThreadCreate
from server.routers.json_route import JSONRoute
from server.runs.events import DONE, FINAL_EVENTS, sse
from server.runs.runner import Runner

router = APIRouter(tags=["runs"], route_class=JSONRoute)
Include = Annotated[list[str], Query(alias="include[]")]
Event = tuple[str, Any]
_background: set[asyncio.Task[None]] = set()  # strong references to fire-and-forget tasks


def _poll_hint(request: Request, response: Response) -> None:
    """The SDK's pollers wait this long between retrieves (its default is a full second)."""
    response.headers["openai-poll-after-ms"] = str(request.app.state.settings.poll_after_ms)


def _lease(runner: Runner) -> tuple[str, float]:
    return runner.owner, time.time() + runner.settings.lease_seconds


def _stream(
    runner: Runner, run_id: str, first: list[Event], cancel_on_disconnect: bool
) -> StreamingResponse:
    """Serve a run's events as SSE. Subscribed before the run starts, so nothing is lost;
    a client that goes away does not stop the run unless it asked for that."""
    queue = runner.bus.subscribe(run_id)

    async def events() -> AsyncIterator[bytes]:
        finished = False
        try:
            for name, data in first:
                yield sse(name, data)
            runner.start(run_id)
            while True:
                name, data = await queue.get()
                yield sse(name, data)
                if name in FINAL_EVENTS:
                    break
            finished = True
            yield DONE
        finally:
            runner.bus.unsubscribe(run_id, queue)
            if cancel_on_disconnect and not finished:
                # This task is being cancelled (anyio cancels level-triggered), so any
                # await here would be cancelled too: hand the cancel to its own task.
                task = asyncio.get_running_loop().create_task(_cancel(runner, run_id))
                _background.add(task)
                task.add_done_callback(_background.discard)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def _cancel(runner: Runner, run_id: str) -> None:
    with contextlib.suppress(crud.RunGone):  # its thread was deleted meanwhile
        await runner.cancel(await runner.db.run(crud.load, run_id))


def _create(
    db: Session,
    runner: Runner,
    models: EmbeddingModels,
    project: str,
    thread: Thread,
    body: RunOptions,
    run_id: str,
    **extra: Any,
) -> Run:
    assistant = assistants.get(db, project, body.assistant_id)
    return crud.create(
        db,
        project,
        thread,
        assistant,
        body,
        models=models,
        requires_action_timeout=runner.settings.requires_action_timeout,
        run_id=run_id,
        lease=_lease(runner) if body.stream else None,
        **extra,
    )


@router.post("/v1/threads/runs", response_model=RunObject)
async def create_thread_and_run(
    body: ThreadAndRunCreate,
    request: Request,
    response: Response,
    project: Project,
    db: DB,
    runner: RunnerDep,
    worker: WorkerDep,
    models: Embeddings,
) -> RunObject | StreamingResponse:
    def work() -> tuple[Thread, Run]:
        assistants.get(db, project, body.assistant_id)
        thread_body = body.thread or ThreadCreate()
        if body.tool_resources is not None and thread_body.tool_resources is None:
            thread_body = ThreadCreate.model_validate(
                {
                    **thread_body.model_dump(exclude_unset=True),
                    "tool_resources": body.tool_resources,
                }
            )
        thread = threads.create(db, project, thread_body, models)
        return thread, _create(db, runner, models, project, thread, body, run_id)

    run_id = new_id("run")
    thread, run = await run_in_threadpool(work)
    if body.stream:
        api = crud.to_api(run)
        return _stream(
            runner,
            run.id,
            [
                ("thread.created", threads.to_api(thread)),
                ("thread.run.created", api),
                ("thread.run.queued", api),
            ],
            body.cancel_on_disconnect,
        )
    worker.wake()
    _poll_hint(request, response)
    return crud.to_api(run)


@router.post("/v1/threads/{thread_id}/runs", response_model=RunObject)
async def create_run(
    thread_id: str,
    body: RunCreate,
    request: Request,
    response: Response,
    project: Project,
    db: DB,
    runner: RunnerDep,
    worker: WorkerDep,
    models: Embeddings,
    include: Include = [],
) -> RunObject | StreamingResponse:
    def work() -> Run:
        thread = threads.get(db, project, thread_id)
        return _create(
            db,
            runner,
            models,
            project,
            thread,
            body,
            new_id("run"),
            additional_instructions=body.additional_instructions,
            additional_messages=body.additional_messages,
        )

    run = await run_in_threadpool(work)
    if body.stream:
        api = crud.to_api(run)
        return _stream(
            runner,
            run.id,
            [("thread.run.created", api), ("thread.run.queued", api)],
            body.cancel_on_disconnect,
        )
    worker.wake()
    _poll_hint(request, response)
    return crud.to_api(run)


@router.get("/v1/threads/{thread_id}/runs")
def list_runs(thread_id: str, project: Project, db: DB, page: Listing) -> ListPage[RunObject]:
    threads.get(db, project, thread_id)
    return paginate(db, Run, {"project": project, "thread_id": thread_id}, page, crud.to_api)


@router.get("/v1/threads/{thread_id}/runs/{run_id}")
def get_run(
    thread_id: str, run_id: str, request: Request, response: Response, project: Project, db: DB
) -> RunObject:
    _poll_hint(request, response)
    return crud.to_api(crud.get(db, project, thread_id, run_id))


@router.post("/v1/threads/{thread_id}/runs/{run_id}")
def update_run(thread_id: str, run_id: str, body: RunUpdate, project: Project, db: DB) -> RunObject:
    run = crud.get(db, project, thread_id, run_id)
    if "metadata" in body.model_fields_set:
        crud.set_fields(db, run, meta=body.metadata or {})
    return crud.to_api(run)


@router.post("/v1/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str,
    run_id: str,
    request: Request,
    response: Response,
    project: Project,
    db: DB,
    runner: RunnerDep,
) -> RunObject:
    run = await run_in_threadpool(crud.get, db, project, thread_id, run_id)
    if not await runner.cancel(run):
        raise bad_request(
            f"Cannot cancel run with status '{run.status}'.", code="invalid_run_status"
        )
    _poll_hint(request, response)
    return crud.to_api(run)


@router.post("/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=RunObject)
async def submit_tool_outputs(
    thread_id: str,
    run_id: str,
    body: SubmitToolOutputs,
    request: Request,
    response: Response,
    project: Project,
    db: DB,
    runner: RunnerDep,
    worker: WorkerDep,
) -> RunObject | StreamingResponse:
    outputs = {o.tool_call_id: o.output for o in body.tool_outputs}
    lease = _lease(runner) if body.stream else None

    def work() -> tuple[Run, RunStep | None]:
        run = crud.get(db, project, thread_id, run_id)
        step = crud.submit_tool_outputs(db, run, outputs, lease)
        return run, step

    run, step = await run_in_threadpool(work)
    if body.stream:
        first: list[Event] = []
        if step is not None:
            first.append(("thread.run.step.completed", step_crud.to_api(step)))
        first.append(("thread.run.queued", crud.to_api(run)))
        return _stream(runner, run.id, first, False)
    worker.wake()
    _poll_hint(request, response)
    return crud.to_api(run)
