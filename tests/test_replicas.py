"""Several `assistd serve` processes sharing one PostgreSQL: every run executes exactly
once, a killed worker's runs end terminal, and one thread still has one active run.

These run on the suite's PostgreSQL pass (ASSISTD_TEST_DATABASE_URL, which `.ci/run`
sets); SQLite is one machine's database and has no replicas to test.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from server.engine import states
from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server_process import TEST_DATABASE_URL, ServerProcess, database_for

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL is None, reason="replicas share PostgreSQL: the PostgreSQL pass runs these"
)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    """Servers on one shared database, each with its own data dir."""

    def __init__(self, root: Path, model_url: str, **env: str) -> None:
        self.root = root
        self.database_url = database_for(root)
        self.env = server_env(model_url, DATABASE_URL=self.database_url, **env)
        self.servers: list[ServerProcess] = []

    def start(self, name: str, *args: str) -> ServerProcess:
        proc = ServerProcess(self.root / name, env=self.env, args=list(args)).start()
        self.servers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.servers:
            proc.stop()


@pytest.fixture
def cluster(
    tmp_path: Path, scripted: tuple[ScriptedModel, str]
) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(**env: str) -> Cluster:
        made.append(Cluster(tmp_path, scripted[1], **env))
        return made[-1]

    yield make
    for c in made:
        c.stop()
    scripted[0].set_default(None)


def clients(servers: list[ServerProcess]) -> list[OpenAI]:
    return [make_client(s.base_url, KEY_ALPHA) for s in servers]


def test_runs_spread_over_three_replicas_each_execute_exactly_once(
    cluster: Callable[..., Cluster], model: ScriptedModel
) -> None:
    total = int(os.environ.get("ASSISTD_TEST_REPLICA_RUNS", "500"))
    c = cluster()
    servers = [c.start(f"api-{i}") for i in range(3)]
    apis = clients(servers)
    assistant = apis[0].beta.assistants.create(model="gpt-4o")

    def start(i: int) -> tuple[str, str]:
        api = apis[i % 3]
        thread = api.beta.threads.create(messages=[{"role": "user", "content": f"job-{i}"}])
        run = api.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        return thread.id, run.id

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        started = list(pool.map(start, range(total)))

    def all_done() -> bool:
        return len(model.requests) >= total and all(
            apis[i % 3].beta.threads.runs.retrieve(run_id, thread_id=thread_id).status
            == "completed"
            for i, (thread_id, run_id) in enumerate(started)
        )

    wait_until(all_done, timeout=240, what=f"{total} runs to complete")
    time.sleep(1)  # a run executed twice would show a second model call by now
    calls = collections.Counter(
        m["content"] for r in model.requests for m in r["messages"] if m["role"] == "user"
    )
    assert len(model.requests) == total
    assert calls == collections.Counter(f"job-{i}" for i in range(total))


def test_killing_a_worker_mid_run_leaves_every_run_terminal_and_every_message(
    cluster: Callable[..., Cluster], model: ScriptedModel
) -> None:
    model.set_default(
        lambda body: Reply(kind="text", content="partial answer " * 20, chunks=20, chunk_delay=0.5)
    )
    c = cluster(ASSISTD_LEASE_SECONDS="2", ASSISTD_SHUTDOWN_GRACE_SECONDS="0")
    api_only = c.start("api", "--no-worker")  # takes requests, executes nothing
    doomed = c.start("worker-a")
    api = make_client(api_only.base_url, KEY_ALPHA)
    assistant = api.beta.assistants.create(model="gpt-4o")
    started = []
    for i in range(50):
        thread = api.beta.threads.create(messages=[{"role": "user", "content": f"in-flight-{i}"}])
        started.append(
            (thread.id, api.beta.threads.runs.create(thread.id, assistant_id=assistant.id).id)
        )

    def all_writing() -> bool:  # every run has its assistant message open
        return all(api.beta.threads.messages.list(thread_id=t, run_id=r).data for t, r in started)

    wait_until(all_writing, timeout=60, what="50 runs in flight")
    assert doomed.proc is not None
    os.kill(doomed.proc.pid, signal.SIGKILL)
    doomed.proc.wait()
    c.start("worker-b")  # the survivor notices the lapsed leases

    def all_terminal() -> list[Any]:
        runs = [api.beta.threads.runs.retrieve(r, thread_id=t) for t, r in started]
        return runs if all(run.status in states.TERMINAL for run in runs) else []

    runs = wait_until(all_terminal, timeout=60, what="every run to end")
    assert {run.status for run in runs} == {"failed"}
    assert {run.last_error.code for run in runs} == {"server_error"}
    for i, (thread_id, run_id) in enumerate(started):
        messages = api.beta.threads.messages.list(thread_id=thread_id, order="asc").data
        assert messages[0].content[0].text.value == f"in-flight-{i}"
        (answer,) = [m for m in messages if m.run_id == run_id]
        assert answer.status == "incomplete"


def test_one_thread_has_one_active_run_across_replicas(
    cluster: Callable[..., Cluster], model: ScriptedModel
) -> None:
    model.set_default(lambda body: Reply(kind="text", content="slow", delay=20))
    c = cluster()
    apis = clients([c.start(f"api-{i}") for i in range(3)])
    assistant = apis[0].beta.assistants.create(model="gpt-4o")
    thread = apis[0].beta.threads.create(messages=[{"role": "user", "content": "go"}])

    def start_run(i: int) -> object:
        try:
            return apis[i % 3].beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        except openai.BadRequestError as exc:
            return exc

    def add_message(i: int) -> object:
        try:
            return apis[i % 3].beta.threads.messages.create(thread.id, role="user", content="x")
        except openai.BadRequestError as exc:
            return exc

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        runs = list(pool.map(start_run, range(12)))
    started = [r for r in runs if not isinstance(r, Exception)]
    assert len(started) == 1
    refused = [r for r in runs if isinstance(r, openai.BadRequestError)]
    assert len(refused) == 11 and all(e.status_code == 400 for e in refused)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        writes = list(pool.map(add_message, range(6)))
    assert all(isinstance(w, openai.BadRequestError) for w in writes)
    apis[1].beta.threads.runs.cancel(started[0].id, thread_id=thread.id)  # type: ignore[attr-defined]
    final = apis[2].beta.threads.runs.poll(started[0].id, thread_id=thread.id)  # type: ignore[attr-defined]
    assert final.status == "cancelled"
