"""Extensions behind the inspector page: a run's model calls and timeline, and a
thread's traces. Same keys and project scoping as the rest of the API."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.crud import runs, threads, traces
from server.crud.pagination import paginate
from server.crud.run_records import MODEL_CALL
from server.deps import DB, Listing, Project
from server.models import RunRecord
from server.protocol.common import ListPage
from server.protocol.inspect import ModelCallObject, RunTimeline, ThreadTraces
from server.routers.json_route import JSONRoute

router = APIRouter(prefix="/v1/threads/{thread_id}", tags=["inspector"], route_class=JSONRoute)


@router.get("/runs/{run_id}/model_calls")
def list_model_calls(
    thread_id: str, run_id: str, request: Request, project: Project, db: DB, page: Listing
) -> ListPage[ModelCallObject]:
    """Extension: the run's recorded model calls, in call order unless `order` says
    otherwise: the request exactly as sent (after truncation), the raw answer, tokens,
    latency and cost."""
    runs.get(db, project, thread_id, run_id)
    if "order" not in request.query_params:
        page.order = "asc"
    where = {"project": project, "run_id": run_id, "kind": MODEL_CALL}
    return paginate(db, RunRecord, where, page, traces.model_call_to_api)


@router.get("/runs/{run_id}/timeline")
def get_timeline(thread_id: str, run_id: str, project: Project, db: DB) -> RunTimeline:
    """Extension: the run's creation, status changes, model calls, tool executions and
    steps, in time order, with durations."""
    return traces.timeline(db, runs.get(db, project, thread_id, run_id))


@router.get("/traces")
def get_thread_traces(thread_id: str, project: Project, db: DB) -> ThreadTraces:
    """Extension: every file_search trace of the thread's runs (candidates marked
    `cited` when an answer cited them), each code_interpreter execution with its
    session state, and each citation resolved to the chunk it cites."""
    threads.require(db, project, thread_id)
    return traces.thread_traces(db, project, thread_id)
