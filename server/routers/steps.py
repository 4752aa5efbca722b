"""/v1/threads/{thread_id}/runs/{run_id}/steps"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from server.crud import runs
from server.crud import steps as crud
from server.crud.pagination import paginate
from server.deps import DB, Listing, Project
from server.models import RetrievalTrace, RunStep
from server.protocol.common import ListPage
from server.protocol.runs import RunStepObject
from server.protocol.vector_stores import TraceObject
from server.routers.json_route import JSONRoute

router = APIRouter(
    prefix="/v1/threads/{thread_id}/runs/{run_id}/steps", tags=["run steps"], route_class=JSONRoute
)
Include = Annotated[list[str], Query(alias="include[]")]


@router.get("")
def list_steps(
    thread_id: str, run_id: str, project: Project, db: DB, page: Listing, include: Include = []
) -> ListPage[RunStepObject]:
    runs.get(db, project, thread_id, run_id)
    wanted = frozenset(include)
    where = {"project": project, "run_id": run_id}
    return paginate(db, RunStep, where, page, lambda row: crud.to_api(row, wanted))


@router.get("/{step_id}")
def get_step(
    thread_id: str, run_id: str, step_id: str, project: Project, db: DB, include: Include = []
) -> RunStepObject:
    runs.get(db, project, thread_id, run_id)
    return crud.to_api(crud.get(db, project, run_id, step_id), frozenset(include))


@router.get("/{step_id}/file_search_trace")
def get_file_search_trace(
    thread_id: str, run_id: str, step_id: str, project: Project, db: DB
) -> ListPage[TraceObject]:
    """Extension: for each file_search call of the step, the queries, every candidate
    with its vector, keyword and fused scores, and which ones reached the prompt."""
    runs.get(db, project, thread_id, run_id)
    crud.get(db, project, run_id, step_id)
    rows = db.exec(
        select(RetrievalTrace)
        .where(RetrievalTrace.project == project, RetrievalTrace.step_id == step_id)
        .order_by(col(RetrievalTrace.seq))
    ).all()
    data = [
        TraceObject(id=r.id, run_id=r.run_id, step_id=r.step_id, created_at=r.created_at, **r.trace)
        for r in rows
    ]
    return ListPage(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=False,
    )
