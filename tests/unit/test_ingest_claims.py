"""Ingestion claims go round robin over projects and their stores (server/tools/
ingest_jobs.py), on the migrated schema of SQLite, or PostgreSQL on its pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from server.db import make_engine, migrate
from server.models import VectorStore, VectorStoreFile
from server.tools import ingest_jobs
from tests.support.server_process import database_for


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = database_for(tmp_path)
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def add(engine: Engine, project: str, store: str, *files: str) -> None:
    with Session(engine) as session:
        if not ingest_jobs.store_exists(session, store):
            session.add(VectorStore(id=store, project=project, created_at=0, embedding_model="m"))
        for file_id in files:
            session.add(
                VectorStoreFile(id=file_id, vector_store_id=store, project=project, created_at=0)
            )
        session.commit()


def claim(engine: Engine, limit: int, idle_only: bool = False) -> list[str]:
    with Session(engine) as session:
        return [c[1] for c in ingest_jobs.claim(session, "w1", 60, limit, idle_only)]


def finish(engine: Engine, *files: str) -> None:
    with Session(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(VectorStoreFile)
            .where(VectorStoreFile.id.in_(files))  # type: ignore[attr-defined]
            .values(status="completed", lease_owner=None, lease_expires_at=None)
        )
        session.commit()


def test_claims_take_turns_between_projects_and_their_stores(engine: Engine) -> None:
    add(engine, "a", "vs_a1", "a1-1", "a1-2", "a1-3", "a1-4")
    add(engine, "a", "vs_a2", "a2-1", "a2-2")
    add(engine, "b", "vs_b", "b-1", "b-2")
    # Not oldest first: each project's first file, then each one's next store.
    assert [claim(engine, 1)[0] for _ in range(4)] == ["a1-1", "b-1", "a2-1", "b-2"]
    # Only project a waits now, and its stores take turns.
    assert sorted(claim(engine, 2)) == ["a1-2", "a2-2"]
    # A project with nothing in flight anywhere is the only one the extra slot may take.
    assert claim(engine, 1, idle_only=True) == []
    add(engine, "c", "vs_c", "c-1")
    assert claim(engine, 1, idle_only=True) == ["c-1"]


def test_the_project_served_longest_ago_goes_first_among_equals(engine: Engine) -> None:
    add(engine, "a", "vs_a", "a-1", "a-2", "a-3")
    assert claim(engine, 1) == ["a-1"]
    finish(engine, "a-1")
    add(engine, "c", "vs_c", "c-1")  # newer than a's waiting files, never served
    assert claim(engine, 1) == ["c-1"]
    finish(engine, "c-1")
    assert sorted(claim(engine, 2)) == ["a-2", "a-3"]
    with Session(engine) as session:
        assert ingest_jobs.claim(session, "w2", 60, 5) == []  # nothing is claimed twice
