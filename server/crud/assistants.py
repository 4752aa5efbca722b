"""Assistant rows."""

from __future__ import annotations

from sqlmodel import Session, select

from retrieval.embedding import EmbeddingModels
from server.crud.resources import dump_tool_resources
from server.errors import not_found
from server.ids import new_id, now
from server.models import Assistant
from server.protocol.assistants import AssistantCreate, AssistantObject, AssistantUpdate
from server.protocol.common import dump_response_format, dump_tools


def to_api(row: Assistant) -> AssistantObject:
    return AssistantObject(
        id=row.id,
        created_at=row.created_at,
        name=row.name,
        description=row.description,
        model=row.model,
        instructions=row.instructions,
        tools=row.tools or [],
        tool_resources=row.tool_resources or {},
        metadata=row.meta or {},
        temperature=row.temperature,
        top_p=row.top_p,
        response_format=row.response_format or "auto",
    )


def get(session: Session, project: str, assistant_id: str) -> Assistant:
    row = session.exec(
        select(Assistant).where(Assistant.project == project, Assistant.id == assistant_id)
    ).first()
    if row is None:
        raise not_found("assistant", assistant_id)
    return row


def create(
    session: Session, project: str, body: AssistantCreate, models: EmbeddingModels
) -> Assistant:
    row = Assistant(
        id=new_id("assistant"),
        project=project,
        created_at=now(),
        name=body.name,
        description=body.description,
        model=body.model,
        instructions=body.instructions,
        tools=dump_tools(body.tools),
        tool_resources=dump_tool_resources(session, project, body.tool_resources, models),
        meta=body.metadata or {},
        temperature=body.temperature,
        top_p=body.top_p,
        response_format=dump_response_format(body.response_format),
        reasoning_effort=body.reasoning_effort,
    )
    session.add(row)
    session.commit()
    return row


def update(
    session: Session, row: Assistant, project: str, body: AssistantUpdate, models: EmbeddingModels
) -> Assistant:
    fields = body.model_fields_set
    for name in ("name", "description", "instructions", "temperature", "top_p", "reasoning_effort"):
        if name in fields:
            setattr(row, name, getattr(body, name))
    if "model" in fields and body.model is not None:
        row.model = body.model
    if "tools" in fields:
        row.tools = dump_tools(body.tools)
    if "tool_resources" in fields:
        row.tool_resources = dump_tool_resources(session, project, body.tool_resources, models)
    if "metadata" in fields:
        row.meta = body.metadata or {}
    if "response_format" in fields:
        row.response_format = dump_response_format(body.response_format)
    session.add(row)
    session.commit()
    return row


def delete(session: Session, row: Assistant) -> None:
    session.delete(row)
    session.commit()
