"""Probes, request ids, and the migrate command."""

from __future__ import annotations

import socket
import time

import httpx
from sqlalchemy import create_engine, inspect

from tests.support.server_process import database_for, run_server_python


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
        done = run_server_python(["-m", "server", "migrate"], env)
        assert done.returncode == 0, done.stderr
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"assistants", "threads", "messages", "files", "alembic_version"} <= tables


def test_an_idle_keep_alive_connection_outlives_the_clients_pool_expiry(server) -> None:
    """httpx (the SDK's transport) drops an idle pooled connection after 5 s. A server
    that closes at the same 5 s races it: a request sent on the connection as the
    server closes it is reset. So ours stays open longer, and a connection idle for
    6 s still answers."""
    host, port = server.base_url.removeprefix("http://").split(":")
    request = f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        for pause in (0, 6):
            time.sleep(pause)
            conn.sendall(request)
            reply = conn.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200"), reply
