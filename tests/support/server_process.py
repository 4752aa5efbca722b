"""Run `python -m server serve` as a real subprocess on a free loopback port.

Tests and benchmarks talk to it over HTTP exactly as a user's SDK would; nothing of the
server is imported into the test process.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
# The SDK-compatibility job runs tests with an old openai client in its own venv while
# the server keeps running from the project's venv.
SERVER_PYTHON = os.environ.get("ASSISTD_SERVER_PYTHON") or sys.executable


def run_server_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The server's interpreter run from the repository root (`-m server migrate`, a
    probe script), its output captured; a process of its own, so nothing it sets up
    leaks into the test process."""
    return subprocess.run(
        [SERVER_PYTHON, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


# Set (e.g. by `eval "$(scripts/postgres)"`) to run every server on PostgreSQL instead of
# SQLite: an admin URL; each data dir gets its own database, created on first use.
TEST_DATABASE_URL = os.environ.get("ASSISTD_TEST_DATABASE_URL") or None
CREATED_DATABASES: set[str] = set()


def database_for(data_dir: Path) -> str:
    """The DATABASE_URL a server on `data_dir` uses: its SQLite file, or a PostgreSQL
    database named after the data dir (so a restart on the same dir finds its data)."""
    if TEST_DATABASE_URL is None:
        return f"sqlite:///{data_dir / 'assistd.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = "assistd_t_" + hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:16]
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    CREATED_DATABASES.add(name)
    return make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def drop_test_databases() -> None:
    if TEST_DATABASE_URL is None or not CREATED_DATABASES:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in sorted(CREATED_DATABASES):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
    CREATED_DATABASES.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, args: list[str] | None = None
    ):
        self.data_dir = data_dir
        self.port = free_port()
        self.extra_env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self.database_url = self.extra_env.get("DATABASE_URL") or database_for(data_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTD_", "MODEL"))}
        env.pop("DATABASE_URL", None)
        env.update({"ASSISTD_DATA_DIR": str(self.data_dir), **self.extra_env})
        env["DATABASE_URL"] = self.database_url
        cmd = [SERVER_PYTHON, "-m", "server", "serve", "--port", str(self.port), *self.args]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
