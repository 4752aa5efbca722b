"""The rows a run writes as it goes: its assistant messages and their steps, and its
tool_calls steps. Each function is one short transaction, run in a worker thread
(`Database.run`).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from server.crud import steps as step_crud
from server.ids import new_id, now
from server.models import Message, Run, RunStep
from server.tools.base import Annotation, StepCall


def open_message(session: Session, run: Run, images: list[str]) -> tuple[RunStep, Message]:
    """An in_progress assistant message and its message_creation step."""
    message = Message(
        id=new_id("message"),
        project=run.project,
        thread_id=run.thread_id,
        created_at=now(),
        role="assistant",
        content=[{"type": "image_file", "image_file": {"file_id": f}} for f in images],
        attachments=[],
        assistant_id=run.assistant_id,
        run_id=run.id,
        status="in_progress",
        meta={},
    )
    session.add(message)
    step = step_crud.create(
        session,
        run,
        "message_creation",
        {"type": "message_creation", "message_creation": {"message_id": message.id}},
    )
    session.commit()
    return step, message


def open_tool_step(session: Session, run: Run) -> RunStep:
    step = step_crud.create(session, run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
    session.commit()
    return step


def text_content(
    text: str, images: list[str], annotations: list[Annotation] | None = None
) -> list[dict[str, Any]]:
    """A message's content: its leading images, then the text (annotations in order)."""
    parts: list[dict[str, Any]] = [
        {"type": "image_file", "image_file": {"file_id": file_id}} for file_id in images
    ]
    ordered = sorted(annotations or [], key=lambda a: int(a["start_index"]))
    if text or not parts:
        parts.append({"type": "text", "text": {"value": text, "annotations": ordered}})
    return parts


def _message(session: Session, message_id: str | None) -> Message:
    return session.exec(select(Message).where(Message.id == message_id)).one()


def _step(session: Session, step_id: str | None) -> RunStep:
    return session.exec(select(RunStep).where(RunStep.id == step_id)).one()


def close_message(
    session: Session,
    message_id: str | None,
    step_id: str | None,
    content: list[dict[str, Any]],
    usage: dict[str, int] | None,
    incomplete_reason: str | None,
) -> tuple[RunStep, Message]:
    ts = now()
    message = _message(session, message_id)
    message.content = content
    if incomplete_reason:
        message.status, message.incomplete_at = "incomplete", ts
        message.incomplete_details = {"reason": incomplete_reason}
    else:
        message.status, message.completed_at = "completed", ts
    step = _step(session, step_id)
    step.status, step.completed_at, step.usage = "completed", ts, usage
    session.add(message)
    session.add(step)
    session.commit()
    return step, message


def save_tool_step(
    session: Session,
    step_id: str | None,
    calls: list[StepCall],
    usage: dict[str, int] | None,
    done: bool = False,
) -> RunStep:
    step = _step(session, step_id)
    step.step_details = {"type": "tool_calls", "tool_calls": calls}
    step.usage = usage
    if done:
        step.status, step.completed_at = "completed", now()
    session.add(step)
    session.commit()
    return step


def save_partial_text(session: Session, message_id: str, content: list[dict[str, Any]]) -> None:
    message = _message(session, message_id)
    message.content = content
    session.add(message)
    session.commit()


def open_items(session: Session, run_id: str) -> tuple[list[str], list[str]]:
    """Ids of the run's in-flight steps and in_progress messages (which end with it)."""
    step_ids = [s.id for s in step_crud.in_flight(session, run_id)]
    message_ids = list(
        session.exec(
            select(Message.id).where(Message.run_id == run_id, Message.status == "in_progress")
        )
    )
    return step_ids, message_ids


def reload_items(
    session: Session, step_ids: list[str], message_ids: list[str]
) -> tuple[list[RunStep], list[Message]]:
    steps = session.exec(select(RunStep).where(col(RunStep.id).in_(step_ids)))
    messages = session.exec(select(Message).where(col(Message.id).in_(message_ids)))
    return list(steps), list(messages)
