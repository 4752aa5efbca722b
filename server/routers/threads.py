"""/v1/threads"""

from __future__ import annotations

from fastapi import APIRouter

from server.crud import threads as crud
from server.deps import DB, Embeddings, Project
from server.protocol.common import Deleted
from server.protocol.threads import ThreadCreate, ThreadObject, ThreadUpdate
from server.routers.json_route import JSONRoute

router = APIRouter(prefix="/v1/threads", tags=["threads"], route_class=JSONRoute)


@router.post("")
def create_thread(
    project: Project, db: DB, models: Embeddings, body: ThreadCreate | None = None
) -> ThreadObject:
    return crud.to_api(crud.create(db, project, body or ThreadCreate(), models))


@router.get("/{thread_id}")
def get_thread(thread_id: str, project: Project, db: DB) -> ThreadObject:
    return crud.to_api(crud.get(db, project, thread_id))


@router.post("/{thread_id}")
def update_thread(
    thread_id: str, body: ThreadUpdate, project: Project, db: DB, models: Embeddings
) -> ThreadObject:
    row = crud.get(db, project, thread_id)
    return crud.to_api(crud.update(db, row, project, body, models))


@router.delete("/{thread_id}")
def delete_thread(thread_id: str, project: Project, db: DB) -> Deleted:
    crud.delete_thread(db, crud.get(db, project, thread_id))
    return Deleted(id=thread_id, object="thread.deleted")
