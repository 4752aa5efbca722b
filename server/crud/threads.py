"""Thread rows; a thread owns its messages (and, later, runs), so deletes cascade."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import Session, col, delete, select

from retrieval.embedding import EmbeddingModels
from server.crud import files, messages, runs, vector_stores
from server.crud.resources import dump_tool_resources
from server.errors import not_found
from server.ids import new_id, now
from server.models import Message, Thread, table_of
from server.protocol.threads import ThreadCreate, ThreadObject, ThreadUpdate


def to_api(row: Thread) -> ThreadObject:
    return ThreadObject(
        id=row.id,
        created_at=row.created_at,
        tool_resources=row.tool_resources or {},
        metadata=row.meta or {},
    )


def get(session: Session, project: str, thread_id: str) -> Thread:
    row = session.exec(
        select(Thread).where(Thread.project == project, Thread.id == thread_id)
    ).first()
    if row is None:
        raise not_found("thread", thread_id)
    return row


_threads = table_of(Thread)
_EXISTS = (
    select(_threads.c.id)
    .where(_threads.c.project == bindparam("project"), _threads.c.id == bindparam("id"))
    .limit(1)
)


def require(session: Session, project: str, thread_id: str) -> None:
    """404 unless the thread exists in this project. For routes that only scope by the
    thread: one prebuilt Core statement, no ORM instance (bench/api_crud.py)."""
    if session.connection().execute(_EXISTS, {"project": project, "id": thread_id}).first() is None:
        raise not_found("thread", thread_id)


def lock_for_message(session: Session, project: str, thread_id: str) -> None:
    """404 unless the thread exists in this project, 400 while a run is active on it;
    otherwise its row stays locked until the session commits the message. One UPDATE
    when the thread is there and idle (bench/api_crud.py), the two checks otherwise."""
    if runs.take_idle_thread(session, project, thread_id):
        return
    session.rollback()  # SQLite: the UPDATE took the write lock even though it missed
    require(session, project, thread_id)
    runs.require_no_active_run(session, thread_id)


def create(session: Session, project: str, body: ThreadCreate, models: EmbeddingModels) -> Thread:
    """The thread and its initial messages land in one transaction, or not at all."""
    refs = [
        ref for i, m in enumerate(body.messages) for ref in messages.file_refs(m, f"messages[{i}].")
    ]
    files.require_files(session, project, refs)
    created = now()
    row = Thread(
        id=new_id("thread"),
        project=project,
        created_at=created,
        tool_resources=dump_tool_resources(session, project, body.tool_resources, models),
        meta=body.metadata or {},
    )
    session.add(row)
    for message in body.messages:
        session.add(messages.build(project, row.id, message, created))
    session.commit()
    file_ids = messages.file_search_ids(body.messages)
    vector_stores.add_attachments(session, project, row, file_ids, models)
    return row


def update(
    session: Session, row: Thread, project: str, body: ThreadUpdate, models: EmbeddingModels
) -> Thread:
    if "tool_resources" in body.model_fields_set:
        row.tool_resources = dump_tool_resources(session, project, body.tool_resources, models)
    if "metadata" in body.model_fields_set:
        row.meta = body.metadata or {}
    session.add(row)
    session.commit()
    return row


def delete_thread(session: Session, row: Thread) -> None:
    """The thread's row is locked first: a message create or run start in flight holds
    that lock until it commits, so the delete waits for it and then removes its rows
    too, instead of deleting the children it can see and leaving the late one behind."""
    session.exec(select(Thread.id).where(Thread.id == row.id).with_for_update()).first()
    runs.delete_for_thread(session, row.id)
    session.exec(delete(Message).where(col(Message.thread_id) == row.id))
    session.delete(row)
    session.commit()
