"""/v1/threads"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.crud import threads as crud
from server.deps import DB, Embeddings, Listing, Project, Sandbox
from server.protocol.common import Deleted, ListPage
from server.protocol.threads import ThreadCreate, ThreadObject, ThreadUpdate
from server.routers.json_route import JSONRoute

router = APIRouter(prefix="/v1/threads", tags=["threads"], route_class=JSONRoute)
_EMPTY = ThreadCreate()


@router.post("")
def create_thread(
    project: Project, db: DB, models: Embeddings, body: ThreadCreate = _EMPTY
) -> ThreadObject:
    # The body is optional (empty reads as `{}`), but when sent it is an object: a
    # `null` body is a 400 (server/body_guard.py), not a thread.
    return crud.to_api(crud.create(db, project, body, models))


@router.get("")
def list_threads(
    project: Project, db: DB, page: Listing, q: Annotated[str, Query(max_length=512)] = ""
) -> ListPage[ThreadObject]:
    """Extension (the hosted API had no thread list): the project's threads, newest
    first; `q` keeps those whose id or metadata contains it."""
    return crud.search(db, project, q.strip(), page)


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
def delete_thread(thread_id: str, project: Project, db: DB, sandbox: Sandbox) -> Deleted:
    crud.delete_thread(db, crud.get(db, project, thread_id))
    if sandbox is not None:
        sandbox.forget(thread_id)  # its code-interpreter session goes now, not at the TTL
    return Deleted(id=thread_id, object="thread.deleted")
