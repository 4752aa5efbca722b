"""Run leases: the run row is the job, and a worker holds it by writing its name and a
deadline with a compare-and-set UPDATE (free: never leased, or the lease lapsed). Also
the worker's other queries over runs: the ones it must expire, fail or interrupt."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import Session, col, select

from server import run_states as states
from server.models import Run


def _free(t: float) -> ColumnElement[bool]:
    """The run's lease is free at time `t`: never taken, or lapsed."""
    return or_(col(Run.lease_expires_at).is_(None), col(Run.lease_expires_at) < t)


def claim(
    session: Session, run_id: str, owner: str, lease_seconds: float, statuses: tuple[str, ...]
) -> bool:
    """Take the lease of one run if it is free (never leased, or its lease lapsed)."""
    t = time.time()
    taken = session.exec(
        update(Run)
        .where(col(Run.id) == run_id, col(Run.status).in_(statuses), _free(t))
        .values(lease_owner=owner, lease_expires_at=t + lease_seconds)
    ).rowcount
    session.commit()
    return bool(taken)


def claim_batch(
    session: Session, owner: str, lease_seconds: float, limit: int, running: list[str]
) -> list[str]:
    """Lease up to `limit` runnable runs in one statement, oldest first.

    On PostgreSQL the candidate rows are locked `FOR UPDATE SKIP LOCKED`, so replicas
    polling at once take disjoint batches instead of racing for the same rows; the
    status and lease are checked again on the locked rows. SQLite has one writer at a
    time and no row locks: the clause is left out there and the same UPDATE is atomic.
    """
    t = time.time()
    runnable = (col(Run.status).in_((states.QUEUED, states.CANCELLING)), _free(t))
    candidates = select(Run.id).where(*runnable).order_by(col(Run.seq)).limit(limit)
    if running:
        candidates = candidates.where(col(Run.id).not_in(running))
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    claimed = session.exec(
        update(Run)
        .where(col(Run.id).in_(candidates.scalar_subquery()), *runnable)
        .values(lease_owner=owner, lease_expires_at=t + lease_seconds)
        .returning(col(Run.id))
    ).all()
    session.commit()
    return [row[0] for row in claimed]


def renew(session: Session, owner: str, run_ids: list[str], lease_seconds: float) -> None:
    session.exec(
        update(Run)
        .where(col(Run.lease_owner) == owner, col(Run.id).in_(run_ids))
        .values(lease_expires_at=time.time() + lease_seconds)
    )
    session.commit()


def release_all(session: Session, owner: str) -> None:
    """Let every lease `owner` holds lapse now (a worker shutting down)."""
    session.exec(update(Run).where(col(Run.lease_owner) == owner).values(lease_expires_at=0.0))
    session.commit()


def cancelling(session: Session, run_ids: list[str]) -> Sequence[str]:
    """Which of these runs a cancel moved to `cancelling` (perhaps through another
    replica)."""
    return session.exec(
        select(Run.id).where(col(Run.id).in_(run_ids), Run.status == states.CANCELLING)
    ).all()


def waited_too_long(session: Session) -> Sequence[Run]:
    """Runs in requires_action past their expires_at."""
    t = int(time.time())
    return session.exec(
        select(Run).where(Run.status == states.REQUIRES_ACTION, col(Run.expires_at) < t)
    ).all()


def orphans(session: Session) -> Sequence[Run]:
    """in_progress runs whose lease lapsed: their worker died."""
    t = time.time()
    return session.exec(select(Run).where(Run.status == states.IN_PROGRESS, _free(t))).all()
