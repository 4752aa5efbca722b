"""Message rows."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import inspect
from sqlmodel import Session, select

from server.crud import files
from server.errors import not_found
from server.ids import new_id, now
from server.models import Message, table_of
from server.protocol.messages import (
    ImageFilePart,
    MessageCreate,
    MessageObject,
    content_to_api,
)


def to_api(row: Message) -> MessageObject:
    return MessageObject(
        id=row.id,
        created_at=row.created_at,
        thread_id=row.thread_id,
        status=row.status,
        incomplete_details=row.incomplete_details,
        completed_at=row.completed_at,
        incomplete_at=row.incomplete_at,
        role=row.role,
        content=row.content,
        assistant_id=row.assistant_id,
        run_id=row.run_id,
        attachments=row.attachments or [],
        metadata=row.meta or {},
    )


def get(session: Session, project: str, thread_id: str, message_id: str) -> Message:
    row = session.exec(
        select(Message).where(
            Message.project == project, Message.thread_id == thread_id, Message.id == message_id
        )
    ).first()
    if row is None:
        raise not_found("message", message_id)
    return row


def file_refs(body: MessageCreate, prefix: str) -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    if not isinstance(body.content, str):
        for i, part in enumerate(body.content):
            if isinstance(part, ImageFilePart):
                refs.append((part.image_file.file_id, f"{prefix}content[{i}].image_file.file_id"))
    for i, attachment in enumerate(body.attachments or []):
        refs.append((attachment.file_id, f"{prefix}attachments[{i}].file_id"))
    return refs


def file_search_ids(bodies: list[MessageCreate]) -> list[str]:
    """Files attached for file_search: they go into the thread's vector store."""
    return [
        a.file_id
        for body in bodies
        for a in body.attachments or []
        if any(t.type == "file_search" for t in a.tools)
    ]


def _values(project: str, thread_id: str, body: MessageCreate, created_at: int) -> dict[str, Any]:
    """A user/assistant message's attributes as the create endpoints store it."""
    return {
        "id": new_id("message"),
        "project": project,
        "thread_id": thread_id,
        "created_at": created_at,
        "role": body.role,
        "content": content_to_api(body.content),
        "attachments": [
            {"file_id": a.file_id, "tools": [t.model_dump() for t in a.tools]}
            for a in body.attachments or []
        ],
        "status": "completed",
        "completed_at": created_at,
        "meta": body.metadata or {},
    }


def build(project: str, thread_id: str, body: MessageCreate, created_at: int) -> Message:
    """The message as an ORM row (not yet added), for inserts in a larger unit of work."""
    return Message(**_values(project, thread_id, body, created_at))


# attribute name -> column name (`meta` is stored as `metadata`), for Core inserts.
_COLUMNS = {prop.key: prop.columns[0].key for prop in inspect(Message).column_attrs}
_MESSAGES_INSERT = table_of(Message).insert()
# What a message made by a create endpoint leaves unset (NULL in the row).
_UNSET = dict.fromkeys(("assistant_id", "run_id", "incomplete_details", "incomplete_at"))


def create(session: Session, project: str, thread_id: str, body: MessageCreate) -> MessageObject:
    """A Core insert answered from the same values: the hottest write of the API, where
    building an ORM instance and flushing it cost more than the statement."""
    files.require_files(session, project, file_refs(body, ""))
    values = _values(project, thread_id, body, now())
    session.connection().execute(
        _MESSAGES_INSERT,
        {_COLUMNS[key]: value for key, value in values.items()},
    )
    session.commit()
    # The values read like the row (to_api reads attributes only): no ORM instance.
    return to_api(cast(Message, SimpleNamespace(**_UNSET, **values)))


def update_metadata(session: Session, row: Message, metadata: dict[str, str] | None) -> Message:
    row.meta = metadata or {}
    session.add(row)
    session.commit()
    return row


def delete(session: Session, row: Message) -> None:
    session.delete(row)
    session.commit()
