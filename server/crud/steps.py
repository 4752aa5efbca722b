"""Run steps: one per message the assistant writes or per batch of tool calls."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from server.errors import not_found
from server.ids import new_id, now
from server.models import Run, RunStep
from server.protocol.runs import RunStepObject

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def to_api(row: RunStep, include: frozenset[str] = frozenset()) -> RunStepObject:
    details = row.step_details
    if FILE_SEARCH_CONTENT not in include and details.get("type") == "tool_calls":
        details = _without_result_content(details)
    return RunStepObject(
        id=row.id,
        created_at=row.created_at,
        assistant_id=row.assistant_id,
        thread_id=row.thread_id,
        run_id=row.run_id,
        type=row.type,
        status=row.status,
        step_details=details,
        last_error=row.last_error,
        expired_at=row.expired_at,
        cancelled_at=row.cancelled_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        metadata=row.meta or {},
        usage=row.usage,
    )


def _without_result_content(details: dict[str, Any]) -> dict[str, Any]:
    """file_search result text is only returned when asked for with include[]."""
    calls = []
    for call in details.get("tool_calls", []):
        if call.get("type") == "file_search" and call.get("file_search", {}).get("results"):
            results = [
                {k: v for k, v in r.items() if k != "content"}
                for r in call["file_search"]["results"]
            ]
            call = {**call, "file_search": {**call["file_search"], "results": results}}
        calls.append(call)
    return {**details, "tool_calls": calls}


def get(session: Session, project: str, run_id: str, step_id: str) -> RunStep:
    row = session.exec(
        select(RunStep).where(
            RunStep.project == project, RunStep.run_id == run_id, RunStep.id == step_id
        )
    ).first()
    if row is None:
        raise not_found("run step", step_id)
    return row


def create(session: Session, run: Run, type: str, details: dict[str, Any]) -> RunStep:
    step = RunStep(
        id=new_id("step"),
        project=run.project,
        run_id=run.id,
        thread_id=run.thread_id,
        assistant_id=run.assistant_id,
        created_at=now(),
        type=type,
        status="in_progress",
        step_details=details,
        meta={},
    )
    session.add(step)
    return step


def in_flight(session: Session, run_id: str) -> list[RunStep]:
    return list(
        session.exec(
            select(RunStep).where(RunStep.run_id == run_id, RunStep.status == "in_progress")
        )
    )
