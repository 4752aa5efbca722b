"""Run records: the inspector's log of a run's model calls, status changes and tool
executions (server/models.py RunRecord), written by server/inspector/recorder.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from server.ids import new_id, now
from server.models import Run, RunRecord

MODEL_CALL, STATUS, TOOLS = "model_call", "status", "tools"


@dataclass
class Entry:
    """A record not yet written: the run it belongs to, its kind, when, and its data."""

    project: str
    thread_id: str
    run_id: str
    kind: str
    at: float
    data: dict[str, Any]


def write(session: Session, entries: list[Entry]) -> int:
    """Insert the entries of runs that still exist (a thread deleted while its run was
    executing takes the run's records with it; none may come back after); returns how
    many were written."""
    run_ids = {e.run_id for e in entries}
    if not run_ids:
        return 0
    alive = set(session.exec(select(Run.id).where(col(Run.id).in_(run_ids))))
    written = 0
    created = now()
    for entry in entries:
        if entry.run_id not in alive:
            continue
        session.add(
            RunRecord(
                id=new_id("record"),
                project=entry.project,
                thread_id=entry.thread_id,
                run_id=entry.run_id,
                kind=entry.kind,
                created_at=created,
                at=entry.at,
                data=entry.data,
            )
        )
        written += 1
    session.commit()
    return written


def for_run(
    session: Session, project: str, run_id: str, kind: str | None = None
) -> list[RunRecord]:
    """A run's records in the order they were written."""
    stmt = select(RunRecord).where(RunRecord.project == project, RunRecord.run_id == run_id)
    if kind is not None:
        stmt = stmt.where(RunRecord.kind == kind)
    return list(session.exec(stmt.order_by(col(RunRecord.seq))))


def for_thread(session: Session, project: str, thread_id: str, kind: str) -> list[RunRecord]:
    stmt = select(RunRecord).where(
        RunRecord.project == project, RunRecord.thread_id == thread_id, RunRecord.kind == kind
    )
    return list(session.exec(stmt.order_by(col(RunRecord.seq))))


def delete_for_thread(session: Session, thread_id: str) -> None:
    session.execute(delete(RunRecord).where(col(RunRecord.thread_id) == thread_id))


def purge(session: Session, older_than: int) -> int:
    """Delete records written before `older_than` (Unix seconds); returns how many."""
    result = session.execute(delete(RunRecord).where(col(RunRecord.created_at) < older_than))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
