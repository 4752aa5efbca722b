"""/v1/threads/{thread_id}/messages"""

from __future__ import annotations

from fastapi import APIRouter

from server.crud import messages as crud
from server.crud import threads, vector_stores
from server.crud.pagination import paginate
from server.deps import DB, Embeddings, Listing, Project
from server.models import Message
from server.protocol.common import Deleted, ListPage
from server.protocol.messages import MessageCreate, MessageObject, MessageUpdate
from server.routers.json_route import JSONRoute

router = APIRouter(
    prefix="/v1/threads/{thread_id}/messages", tags=["messages"], route_class=JSONRoute
)


@router.post("")
def create_message(
    thread_id: str, body: MessageCreate, project: Project, db: DB, models: Embeddings
) -> MessageObject:
    threads.lock_for_message(db, project, thread_id)
    message = crud.create(db, project, thread_id, body)
    file_search_ids = crud.file_search_ids([body])
    if file_search_ids:  # the thread row only when its vector store is needed
        thread = threads.get(db, project, thread_id)
        vector_stores.add_attachments(db, project, thread, file_search_ids, models)
    return message


@router.get("")
def list_messages(
    thread_id: str, project: Project, db: DB, page: Listing, run_id: str | None = None
) -> ListPage[MessageObject]:
    where = {"project": project, "thread_id": thread_id}
    if run_id is not None:
        where["run_id"] = run_id
    return paginate(
        db,
        Message,
        where,
        page,
        crud.to_api,
        require_parent=lambda: threads.require(db, project, thread_id),
    )


@router.get("/{message_id}")
def get_message(thread_id: str, message_id: str, project: Project, db: DB) -> MessageObject:
    threads.require(db, project, thread_id)
    return crud.to_api(crud.get(db, project, thread_id, message_id))


@router.post("/{message_id}")
def update_message(
    thread_id: str, message_id: str, body: MessageUpdate, project: Project, db: DB
) -> MessageObject:
    threads.require(db, project, thread_id)
    row = crud.get(db, project, thread_id, message_id)
    return crud.to_api(crud.update_metadata(db, row, body.metadata))


@router.delete("/{message_id}")
def delete_message(thread_id: str, message_id: str, project: Project, db: DB) -> Deleted:
    threads.require(db, project, thread_id)
    crud.delete(db, crud.get(db, project, thread_id, message_id))
    return Deleted(id=message_id, object="thread.message.deleted")
