"""Probes, request ids, keep-alive, and the migrate command."""

from __future__ import annotations

import http.client
import time

import httpx
from sqlalchemy import create_engine, inspect

from tests.support.server_process import ServerProcess, database_for, run_server_python


def test_ready_reports_database_and_migrations(server) -> None:
    r = httpx.get(f"{server.base_url}/ready")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok"},
        # an optional feature that is off does not make the server unready
        "features": {"code_interpreter": "turned off (ASSISTD_SANDBOX=off)", "models": "ok"},
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
    server closes it is reset. So ours stays open longer (ASSISTD_KEEP_ALIVE_SECONDS,
    30 s), and a connection idle for 6 s still answers, on the same socket."""
    host, port = server.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        sockets = []
        for pause in (0, 6):
            time.sleep(pause)
            conn.request("GET", "/health")
            reply = conn.getresponse()
            assert reply.status == 200 and reply.read() == b'{"status":"ok"}'
            sockets.append(conn.sock)
        assert sockets[0] is sockets[1] and sockets[0] is not None  # not reconnected
    finally:
        conn.close()


def test_the_keep_alive_timeout_is_configurable(tmp_path) -> None:
    proc = ServerProcess(tmp_path, env={"ASSISTD_KEEP_ALIVE_SECONDS": "1"}).start()
    try:
        host, port = proc.base_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/health")
        assert conn.getresponse().read() == b'{"status":"ok"}'
        # (This server routes no model: /ready says so, and stays ready.)
        ready = httpx.get(f"{proc.base_url}/ready").json()
        assert ready["features"]["models"].startswith("none routed: set MODEL_BASE_URL")
        time.sleep(2.5)
        assert conn.sock is not None and conn.sock.recv(1) == b""  # the server closed it
        conn.close()
    finally:
        proc.stop()
