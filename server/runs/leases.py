"""Run leases: the run row is the job, and a worker holds it by writing its name and a
deadline with a compare-and-set UPDATE (free: never leased, or the lease lapsed)."""

from __future__ import annotations

import time

from sqlalchemy import or_, update
from sqlmodel import Session, select

from server import run_states as states
from server.models import Run


def claim(
    session: Session, run_id: str, owner: str, lease_seconds: float, statuses: tuple[str, ...]
) -> bool:
    """Take the lease of one run if it is free (never leased, or its lease lapsed)."""
    t = time.time()
    taken = session.exec(  # type: ignore[call-overload]
        update(Run)
        .where(
            Run.id == run_id,
            Run.status.in_(statuses),  # type: ignore[attr-defined]
            or_(Run.lease_expires_at.is_(None), Run.lease_expires_at < t),  # type: ignore[union-attr,operator]
        )
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
    runnable = (
        Run.status.in_((states.QUEUED, states.CANCELLING)),  # type: ignore[attr-defined]
        or_(Run.lease_expires_at.is_(None), Run.lease_expires_at < t),  # type: ignore[union-attr,operator]
    )
    candidates = select(Run.id).where(*runnable).order_by(Run.seq).limit(limit)  # type: ignore[arg-type]
    if running:
        candidates = candidates.where(Run.id.not_in(running))  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    claimed = session.exec(  # type: ignore[call-overload]
        update(Run)
        .where(Run.id.in_(candidates.scalar_subquery()), *runnable)  # type: ignore[attr-defined]
        .values(lease_owner=owner, lease_expires_at=t + lease_seconds)
        .returning(Run.id)
    ).all()
    session.commit()
    return [row[0] for row in claimed]
