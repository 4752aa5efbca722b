"""Probes, request ids, and the migrate command."""

from __future__ import annotations

import subprocess

import httpx
from sqlalchemy import create_engine, inspect

from tests.support.server_process import REPO, SERVER_PYTHON, database_for


def test_ready_reports_database_and_migrations(server) -> None:
    r = httpx.get(f"{server.base_url}/ready")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok"},
        # an optional feature that is off does not make the server unready
        "features": {"code_interpreter": "turned off (ASSISTD_SANDBOX=off)"},
    }


def test_every_response_carries_a_request_id(http) -> None:
    ok = http.get("/assistants")
    missing = http.get("/assistants/asst_nope")
    assert ok.headers["x-request-id"].startswith("req_")
    assert missing.headers["x-request-id"] != ok.headers["x-request-id"]
    echoed = http.get("/assistants", headers={"x-request-id": "mine-42"})
    assert echoed.headers["x-request-id"] == "mine-42"


def test_migrate_command_creates_the_schema(tmp_path) -> None:
    url = database_for(tmp_path)
    env = {"ASSISTD_DATA_DIR": str(tmp_path), "DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # idempotent
        done = subprocess.run(
            [SERVER_PYTHON, "-m", "server", "migrate"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"assistants", "threads", "messages", "files", "alembic_version"} <= tables
