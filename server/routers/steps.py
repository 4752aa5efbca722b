"""/v1/threads/{thread_id}/runs/{run_id}/steps"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.crud import runs
from server.crud import steps as crud
from server.crud.pagination import paginate
from server.deps import DB, Listing, Project
from server.models import RunStep
from server.protocol.common import ListPage
from server.protocol.runs import RunStepObject

router = APIRouter(prefix="/v1/threads/{thread_id}/runs/{run_id}/steps", tags=["run steps"])
Include = Annotated[list[str], Query(alias="include[]")]


@router.get("")
def list_steps(
    thread_id: str, run_id: str, project: Project, db: DB, page: Listing, include: Include = []
) -> ListPage[RunStepObject]:
    runs.get(db, project, thread_id, run_id)
    wanted = frozenset(include)
    scope = [RunStep.project == project, RunStep.run_id == run_id]
    return paginate(db, RunStep, scope, page, lambda row: crud.to_api(row, wanted))


@router.get("/{step_id}")
def get_step(
    thread_id: str, run_id: str, step_id: str, project: Project, db: DB, include: Include = []
) -> RunStepObject:
    runs.get(db, project, thread_id, run_id)
    return crud.to_api(crud.get(db, project, run_id, step_id), frozenset(include))
