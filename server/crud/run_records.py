"""Run records: the inspector's log of a run's model calls, status changes and tool
executions (server/models.py RunRecord), written by server/inspector/recorder.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert
from sqlmodel import Session, col, select

from server.ids import new_id, now
from server.models import Run, RunRecord, table_of

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


_RECORDS = table_of(RunRecord)
_RUNS = table_of(Run)
_INSERT = insert(_RECORDS)
_ALIVE = select(_RUNS.c.id).where(_RUNS.c.id.in_(bindparam("ids", expanding=True)))


def write(session: Session, entries: list[Entry]) -> int:
    """Insert the entries of runs that still exist (a thread deleted while its run was
    executing takes the run's records with it; none may come back after); returns how
    many were written. Core statements: this runs once or twice per run, and the ORM's
    unit of work cost several times the INSERT itself (bench/run_records.py)."""
    run_ids = sorted({e.run_id for e in entries})
    if not run_ids:
        return 0
    conn = session.connection()
    alive = set(conn.execute(_ALIVE, {"ids": run_ids}).scalars())
    created = now()
    rows = [
        {
            "id": new_id("record"),
            "project": e.project,
            "thread_id": e.thread_id,
            "run_id": e.run_id,
            "kind": e.kind,
            "created_at": created,
            "at": e.at,
            "data": e.data,
        }
        for e in entries
        if e.run_id in alive
    ]
    if rows:
        conn.execute(_INSERT, rows)
    session.commit()
    return len(rows)


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
