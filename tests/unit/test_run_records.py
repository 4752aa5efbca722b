"""Run records in a real, migrated database (SQLite, or PostgreSQL when
ASSISTD_TEST_DATABASE_URL is set): written only for runs that exist, and purged by the
worker's chore once past the retention period."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from server.config import Settings
from server.crud import run_records
from server.crud.run_records import STATUS, Entry
from server.db import Database, make_engine, migrate
from server.inspector.recorder import purge_chore
from server.models import Run
from tests.support.server_process import database_for


def entry(run_id: str) -> Entry:
    return Entry("p", "thread_1", run_id, STATUS, time.time(), {"from": "a", "to": "b"})


def test_records_are_written_for_live_runs_and_purged_after_retention(tmp_path: Path) -> None:
    url = database_for(tmp_path)
    migrate(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            session.add(
                Run(
                    id="run_1",
                    project="p",
                    thread_id="thread_1",
                    assistant_id="a",
                    created_at=0,
                    model="m",
                )
            )
            session.commit()
            # A run deleted meanwhile (its thread went) gets no records back.
            assert (
                run_records.write(session, [entry("run_1"), entry("run_1"), entry("run_gone")]) == 2
            )
            old, new = (r.id for r in run_records.for_run(session, "p", "run_1"))
            session.execute(
                text("UPDATE run_records SET created_at = :t WHERE id = :id"),
                {"t": int(time.time()) - 2 * 86400, "id": old},
            )
            session.commit()

        settings = Settings(data_dir=tmp_path, database_url=url, model_call_retention_days=1)
        chore = purge_chore(Database(engine), settings)
        assert chore is not None and chore.interval == 3600  # a quarter of a day, capped
        asyncio.run(chore.work())
        with Session(engine) as session:
            assert [r.id for r in run_records.for_run(session, "p", "run_1")] == [new]

        keep_forever = Settings(data_dir=tmp_path, database_url=url, model_call_retention_days=0)
        assert purge_chore(Database(engine), keep_forever) is None
        short = Settings(data_dir=tmp_path, database_url=url, model_call_retention_days=0.0001)
        assert purge_chore(Database(engine), short).interval == pytest.approx(2.16)  # type: ignore[union-attr]
    finally:
        engine.dispose()
