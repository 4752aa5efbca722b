"""Keys made with `assistd keys create`: stored as hashes, usable at once, listed without
the secret, revoked within the cache TTL on every server, isolating projects, and working
alongside ASSISTD_API_KEYS.

The CLI runs as a subprocess against the same DATABASE_URL and data dir as the servers,
as an operator would run it next to a deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from server.api_keys import CACHE_SECONDS, KeyCache, create_key, revoke_key
from server.db import make_engine, migrate
from tests.conftest import make_client, walk
from tests.support.server_process import (
    REPO,
    SERVER_PYTHON,
    TEST_DATABASE_URL,
    ServerProcess,
    database_for,
    free_port,
)

KEY_FORMAT = re.compile(r"sk-assistd-[A-Za-z0-9]{40}")
ASSISTD = Path(SERVER_PYTHON).with_name("assistd")  # the installed console script


class Deployment:
    """Servers sharing one database, and the `assistd keys` CLI pointed at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.database_url = database_for(root)
        self.servers: list[ServerProcess] = []

    def start(self, name: str, env: dict[str, str] | None = None, *args: str) -> ServerProcess:
        env = {
            "DATABASE_URL": self.database_url,
            "ASSISTD_SANDBOX": "off",
            "MODEL_BASE_URL": "http://127.0.0.1:9/v1",  # a route, never called: names are valid
            **(env or {}),
        }
        proc = ServerProcess(self.root / name, env=env, args=list(args)).start()
        self.servers.append(proc)
        return proc

    def keys(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
        env.update(ASSISTD_DATA_DIR=str(self.root), DATABASE_URL=self.database_url)
        done = subprocess.run(
            [str(ASSISTD), "keys", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def create_key(self, project: str) -> str:
        return self.keys("create", "--project", project).stdout.strip()

    def rows(self) -> list[dict[str, Any]]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                result = conn.execute(text("SELECT * FROM api_keys ORDER BY seq"))
                return [dict(row._mapping) for row in result]
        finally:
            engine.dispose()

    def tables(self) -> set[str]:
        """The tables in the database (none, and no SQLite file made, before a migrate)."""
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
            return set()
        engine = create_engine(url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    def stop(self) -> None:
        for proc in self.servers:
            proc.stop()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    made = Deployment(tmp_path)
    yield made
    made.stop()


ENV_KEY = "sk-env-0123456789"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, ServerProcess]]:
    """One server with an env key of project alpha, for tests that add database keys."""
    made = Deployment(tmp_path_factory.mktemp("keyed"))
    server = made.start("api", {"ASSISTD_API_KEYS": f"{ENV_KEY}:alpha"})
    yield made, server
    made.stop()


def eventually(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check()` held; fails if it did not within `timeout`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not met in time"
        time.sleep(0.1)
    return time.monotonic() - start


def refused(client: openai.OpenAI) -> bool:
    try:
        client.beta.assistants.list()
    except openai.AuthenticationError:
        return True
    return False


def test_created_key_is_printed_once_and_only_its_hash_is_stored(
    deployment: Deployment,
) -> None:
    done = deployment.keys("create", "--project", "team-a")
    key = done.stdout.strip()
    assert KEY_FORMAT.fullmatch(key), done.stdout
    assert "only time" in done.stderr and key not in done.stderr

    (row,) = deployment.rows()
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["project"] == "team-a" and row["revoked_at"] is None
    assert key.startswith(row["prefix"]) and len(row["prefix"]) < len(key) - 30
    assert not any(key in str(value) for value in row.values())


def test_list_shows_prefix_project_and_dates_but_never_the_key(
    deployment: Deployment,
) -> None:
    first = deployment.create_key("team-a")
    second = deployment.create_key("team-b")
    deployment.keys("revoke", first[:19])

    listing = deployment.keys("list").stdout
    assert first not in listing and second not in listing
    lines = listing.strip().splitlines()
    assert lines[0].split() == ["id", "prefix", "project", "created", "revoked"]
    a, b = (line.split() for line in lines[1:])
    assert a[1] == first[:19] + "..." and a[2] == "team-a"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a[4])  # revoked at
    assert b[1] == second[:19] + "..." and b[2] == "team-b" and b[4] == "-"


def test_revoke_accepts_id_listed_prefix_or_key_and_refuses_unknown(
    deployment: Deployment,
) -> None:
    by_id, by_prefix, by_key = (deployment.create_key("p") for _ in range(3))
    ids = {row["prefix"]: row["id"] for row in deployment.rows()}
    deployment.keys("revoke", ids[by_id[:19]])
    deployment.keys("revoke", by_prefix[:19] + "...")  # copied from `keys list`
    deployment.keys("revoke", by_key)
    assert all(row["revoked_at"] is not None for row in deployment.rows())

    again = deployment.keys("revoke", by_key)  # idempotent
    assert again.returncode == 0
    unknown = deployment.keys("revoke", "sk-assistd-nope", check=False)
    assert unknown.returncode == 1 and "no key" in unknown.stderr


def test_list_and_revoke_never_migrate_and_say_to_run_migrate(
    deployment: Deployment,
) -> None:
    """Only `keys create`, serve, worker and migrate change the schema: pointed at an
    empty database, `list` and `revoke` exit non-zero, name the fix and leave it empty."""
    for args in (["list"], ["revoke", "sk-assistd-AbCd1234"]):
        done = deployment.keys(*args, check=False)
        assert done.returncode != 0, done.stdout
        assert "no assistd schema" in done.stderr and "assistd migrate" in done.stderr
        assert "Traceback" not in done.stderr
    assert deployment.tables() == set()  # not even alembic_version

    key = deployment.create_key("team-a")  # create migrates; then list and revoke work
    assert "alembic_version" in deployment.tables()
    assert key[:19] in deployment.keys("list").stdout
    deployment.keys("revoke", key)


def test_key_lifecycle_across_two_servers_open_then_required_then_revoked(
    deployment: Deployment,
) -> None:
    servers = [deployment.start(f"api-{i}") for i in range(2)]
    anyone = [make_client(s.base_url, "anything-locally") for s in servers]
    anyone[0].beta.assistants.create(model="m")  # no keys anywhere: open, default project

    key = deployment.create_key("team-a")
    keep = deployment.create_key("team-a")
    for client in anyone:  # the first key closes every server within the cache TTL
        eventually(lambda client=client: refused(client), timeout=CACHE_SECONDS + 2)
    r = httpx.get(f"{servers[0].base_url}/v1/assistants")  # no Authorization header at all
    assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    assert httpx.get(f"{servers[0].base_url}/health").status_code == 200  # probes: no key

    clients = [make_client(s.base_url, key) for s in servers]
    assistant = clients[0].beta.assistants.create(model="m", name="mine")
    assert [a.id for a in walk(clients[1].beta.assistants.list())] == [assistant.id]

    deployment.keys("revoke", key)  # both servers hold the key in their cache now
    for client in clients:
        elapsed = eventually(lambda client=client: refused(client), timeout=CACHE_SECONDS + 2)
        assert elapsed <= CACHE_SECONDS + 1
    with pytest.raises(openai.AuthenticationError) as err:
        clients[0].beta.threads.create()
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
    assert err.value.body["type"] == "invalid_request_error"
    assert key not in err.value.message  # masked
    # The project's other key still works, and sees the project's objects.
    assert make_client(servers[1].base_url, keep).beta.assistants.retrieve(assistant.id).id


def test_database_keys_isolate_projects(keyed: tuple[Deployment, ServerProcess]) -> None:
    deployment, server = keyed
    alpha = make_client(server.base_url, deployment.create_key("alpha"))
    alpha_too = make_client(server.base_url, deployment.create_key("alpha"))
    beta = make_client(server.base_url, deployment.create_key("beta"))

    assistant = alpha.beta.assistants.create(model="m", name="secret")
    thread = alpha.beta.threads.create(messages=[{"role": "user", "content": "private"}])
    with pytest.raises(openai.NotFoundError):
        beta.beta.assistants.retrieve(assistant.id)
    with pytest.raises(openai.NotFoundError):
        beta.beta.threads.messages.list(thread_id=thread.id)
    assert assistant.id not in {a.id for a in walk(beta.beta.assistants.list(limit=100))}
    # A second key of the same project sees the same objects.
    assert alpha_too.beta.assistants.retrieve(assistant.id).name == "secret"


def test_env_keys_keep_working_next_to_database_keys(
    keyed: tuple[Deployment, ServerProcess],
) -> None:
    deployment, server = keyed
    from_env = make_client(server.base_url, ENV_KEY)
    from_db = make_client(server.base_url, deployment.create_key("alpha"))
    other = make_client(server.base_url, deployment.create_key("gamma"))

    assistant = from_env.beta.assistants.create(model="m", name="shared")
    assert from_db.beta.assistants.retrieve(assistant.id).name == "shared"
    with pytest.raises(openai.NotFoundError):
        other.beta.assistants.retrieve(assistant.id)
    assert refused(make_client(server.base_url, "sk-assistd-" + "x" * 40))
    assert refused(make_client(server.base_url, "sk-env-wrong-123456"))


def test_public_bind_is_allowed_once_a_database_key_exists(deployment: Deployment) -> None:
    deployment.create_key("team-a")
    server = deployment.start("api", None, "--host", "0.0.0.0")  # no ASSISTD_API_KEYS
    assert refused(make_client(server.base_url, "anything-locally"))


def counted_engine(tmp_path: Path) -> tuple[Any, list[str]]:
    """A migrated SQLite engine and the list of every statement it executes."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrate(url)
    engine = make_engine(url)
    queries: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    return engine, queries


def test_key_lookups_reach_the_database_once_per_ttl(tmp_path: Path) -> None:
    """The hot path in-process: a fake clock instead of sleeping through the TTL."""
    engine, queries = counted_engine(tmp_path)
    now = [100.0]
    cache = KeyCache(engine, {"sk-env-key": "envproj"}, ttl=5.0, clock=lambda: now[0])
    _, key = create_key(engine, "team-a")

    async def lookups(token: str, times: int = 50) -> set[str | None]:
        return {await cache.project_for(token) for _ in range(times)}

    try:
        queries.clear()
        assert asyncio.run(lookups(key)) == {"team-a"}
        assert asyncio.run(lookups("sk-assistd-unknown")) == {None}  # misses are cached too
        assert asyncio.run(lookups("sk-env-key")) == {"envproj"}  # env keys: no query
        assert asyncio.run(lookups("garbage")) == {None}  # not our format: no query
        assert len(queries) == 2

        revoke_key(engine, key)
        now[0] += 4.9
        assert asyncio.run(lookups(key)) == {"team-a"}  # still within the TTL
        now[0] += 0.2
        assert asyncio.run(lookups(key)) == {None}  # refused once the entry expired
        assert asyncio.run(cache.auth_required())  # env keys: always required
    finally:
        engine.dispose()


def test_key_cache_is_a_bounded_lru(tmp_path: Path) -> None:
    """At the bound the least recently used entry goes, not the whole cache: a flood of
    random keys cannot push the keys in use back to the database on every request."""
    engine, queries = counted_engine(tmp_path)
    now = [100.0]
    cache = KeyCache(engine, {}, ttl=5.0, clock=lambda: now[0], max_entries=3)
    busy = create_key(engine, "team-a")[1]

    def lookups(*tokens: str) -> int:
        """How many of these lookups reached the database."""
        before = len(queries)
        for token in tokens:
            asyncio.run(cache.project_for(token))
        return len(queries) - before

    try:
        assert lookups(busy) == 1
        for i in range(50):  # a flood of unknown keys, the busy key used in between
            assert lookups(f"sk-assistd-random-{i}") == 1
            assert lookups(busy) == 0, f"busy key evicted after {i + 1} random keys"
            assert len(cache) <= 3
        assert lookups("sk-assistd-random-0") == 1  # long evicted
        assert lookups("sk-assistd-random-49") == 0  # still cached
        now[0] += 5.1  # the TTL still applies to every entry
        assert lookups(busy, "sk-assistd-random-49") == 2
    finally:
        engine.dispose()


class TcpProxy:
    """A loopback TCP forwarder in front of PostgreSQL that the test can cut (every
    connection dropped, new ones refused) and restore: the database "goes away"."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()
        with self.lock:
            dropped, self.sockets = self.sockets, []
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.mark.skipif(TEST_DATABASE_URL is None, reason="needs PostgreSQL to take away")
def test_unreachable_database_is_a_503_in_the_error_envelope_then_recovers(
    deployment: Deployment,
) -> None:
    db_key = deployment.create_key("team-a")
    unused_key = deployment.create_key("team-a")  # never looked up before the outage
    direct = make_url(deployment.database_url)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port)
    try:
        server = deployment.start(
            "api",
            {
                "DATABASE_URL": via_proxy.render_as_string(hide_password=False),
                "ASSISTD_API_KEYS": f"{ENV_KEY}:alpha",
            },
        )
        for key in (db_key, ENV_KEY):
            make_client(server.base_url, key).beta.assistants.create(model="m")

        proxy.cut()
        # An uncached database key fails in the key lookup, an env key in the route.
        for key in (unused_key, ENV_KEY):
            r = httpx.get(
                f"{server.base_url}/v1/assistants",
                headers={"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"},
                timeout=30,
            )
            assert r.status_code == 503, r.text
            assert r.json() == {
                "error": {
                    "message": "The server could not reach its database. "
                    "Please retry your request shortly.",
                    "type": "server_error",
                    "param": None,
                    "code": "database_unavailable",
                }
            }
        with pytest.raises(openai.InternalServerError) as err:  # what the SDK raises
            make_client(server.base_url, unused_key).beta.threads.create()
        assert err.value.status_code == 503 and err.value.code == "database_unavailable"
        assert "unhandled error" not in server.log()  # no 500 path was taken

        proxy.restore()  # back: the pool reconnects and every key works again

        def answers(client: openai.OpenAI) -> bool:
            try:
                return bool(client.beta.assistants.list().data)
            except openai.InternalServerError:
                return False

        for key in (unused_key, db_key, ENV_KEY):
            eventually(lambda key=key: answers(make_client(server.base_url, key)), 10)
    finally:
        deployment.stop()
        proxy.cut()
