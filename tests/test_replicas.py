"""Several `assistd serve` processes sharing one PostgreSQL: every run executes exactly
once, a killed worker's runs end terminal, and one thread still has one active run.

These run on the suite's PostgreSQL pass (ASSISTD_TEST_DATABASE_URL, which `.ci/run`
sets); SQLite is one machine's database and has no replicas to test.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from server import run_states as states
from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server_process import (
    REPO,
    SERVER_PYTHON,
    TEST_DATABASE_URL,
    ServerProcess,
    database_for,
)

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
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> ServerProcess:
        proc = ServerProcess(self.root / name, env=self.env, args=list(args)).start()
        self.servers.append(proc)
        return proc

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """`assistd worker` (the installed script): the worker loop without HTTP. Ready
        once it logs so; it has no port to poll."""
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTD_", "MODEL"))}
        env.update({"ASSISTD_DATA_DIR": str(data_dir), **self.env})
        log_path = data_dir / "worker.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [str(Path(SERVER_PYTHON).with_name("assistd")), "worker"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.workers.append(proc)
        wait_until(
            lambda: proc.poll() is not None or " ready (data dir " in log_path.read_text(),
            timeout=60,
            what=f"{name} to start",
        )
        assert proc.poll() is None, log_path.read_text()
        return proc

    def stop(self) -> None:
        for proc in self.servers:
            proc.stop()
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


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


def test_racing_runs_and_messages_on_one_thread_across_replicas(
    cluster: Callable[..., Cluster], model: ScriptedModel
) -> None:
    """Run starts and message creates hit the same threads at once through three
    replicas: each thread gets exactly one run, every other start and every message
    that lands while that run is active gets 400, and each message that was accepted
    is in the run's prompt (it came before the run; none slipped in after)."""
    model.set_default(lambda body: Reply(kind="text", content="slow", delay=30))
    c = cluster()
    apis = clients([c.start(f"api-{i}") for i in range(3)])
    assistant = apis[0].beta.assistants.create(model="gpt-4o")
    threads = [
        apis[0].beta.threads.create(messages=[{"role": "user", "content": f"t{t}"}]).id
        for t in range(int(os.environ.get("ASSISTD_TEST_RACE_THREADS", "30")))
    ]
    attempts: list[tuple[str, int, str, int]] = []  # (kind, thread index, thread id, n)
    for t, thread_id in enumerate(threads):
        attempts += [("run", t, thread_id, n) for n in range(3)]
        attempts += [("message", t, thread_id, n) for n in range(6)]
    random.Random(7).shuffle(attempts)

    def attempt(i: int) -> tuple[str, int, str, object]:
        kind, t, thread_id, n = attempts[i]
        api = apis[i % 3]
        try:
            if kind == "run":
                result: object = api.beta.threads.runs.create(thread_id, assistant_id=assistant.id)
            else:
                result = api.beta.threads.messages.create(
                    thread_id, role="user", content=f"t{t}-m{n}"
                )
        except openai.BadRequestError as exc:
            result = exc
        return kind, t, thread_id, result

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        results = list(pool.map(attempt, range(len(attempts))))

    started: dict[int, Any] = {}
    accepted: dict[int, set[str]] = collections.defaultdict(set)
    for kind, t, _, result in results:
        if isinstance(result, openai.BadRequestError):
            assert result.status_code == 400
            assert result.body["type"] == "invalid_request_error"  # type: ignore[index]
        elif kind == "run":
            assert t not in started, f"thread {t} got two active runs"
            started[t] = result
        else:
            accepted[t].add(result.content[0].text.value)  # type: ignore[attr-defined]
    assert sorted(started) == list(range(len(threads)))
    refused = [r for k, _, _, r in results if k == "run" and isinstance(r, Exception)]
    assert len(refused) == 2 * len(threads)

    # Every run reached the model with the thread as it was when the run started: all
    # the messages accepted for that thread, since none may be added while it runs.
    prompts = {
        next(m["content"] for m in r["messages"] if m["role"] == "user"): r
        for r in model.wait_for_requests(len(threads), timeout=60)
    }
    for t in range(len(threads)):
        seen = {m["content"] for m in prompts[f"t{t}"]["messages"] if m["role"] == "user"}
        assert accepted[t] <= seen, f"thread {t}: {accepted[t] - seen} added during its run"
    for t, run in started.items():
        with pytest.raises(openai.BadRequestError):  # still active: still refused
            apis[t % 3].beta.threads.messages.create(threads[t], role="user", content="late")
        apis[t % 3].beta.threads.runs.cancel(run.id, thread_id=threads[t])


def test_api_without_worker_plus_assistd_worker_runs_and_stops_on_sigterm(
    cluster: Callable[..., Cluster], model: ScriptedModel
) -> None:
    """The split deployment: `serve --no-worker` takes requests and executes nothing;
    `assistd worker` executes the runs; SIGTERM stops it within its grace period, exit
    status 0, with the run it was executing handed back to the next worker."""
    c = cluster(ASSISTD_SHUTDOWN_GRACE_SECONDS="1")
    api = make_client(c.start("api", "--no-worker").base_url, KEY_ALPHA)
    assistant = api.beta.assistants.create(model="gpt-4o")
    started = []
    for i in range(5):
        thread = api.beta.threads.create(messages=[{"role": "user", "content": f"job-{i}"}])
        run = api.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        started.append((thread.id, run.id))
    time.sleep(1)  # the API process executes nothing
    assert {api.beta.threads.runs.retrieve(r, thread_id=t).status for t, r in started} == {"queued"}
    assert model.requests == []

    worker = c.start_worker("worker-a")

    def all_completed() -> bool:
        return all(
            api.beta.threads.runs.retrieve(r, thread_id=t).status == "completed" for t, r in started
        )

    wait_until(all_completed, timeout=60, what="the worker to complete the runs")
    for i, (thread_id, run_id) in enumerate(started):
        (answer,) = api.beta.threads.messages.list(thread_id=thread_id, run_id=run_id).data
        assert answer.content[0].text.value == f"You said: job-{i}"  # type: ignore[union-attr]

    # SIGTERM with a run in flight: the worker waits its 1 s grace, hands the run back
    # and exits 0; the next worker fails that run at once (its lease was made to lapse).
    model.set_default(lambda body: Reply(kind="text", content="slow", delay=30))
    thread = api.beta.threads.create(messages=[{"role": "user", "content": "in flight"}])
    run = api.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    wait_until(lambda: len(model.requests) == 6, timeout=30, what="the run to reach the model")
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 8
    log = (c.root / "worker-a" / "worker.log").read_text()
    assert "Traceback" not in log, log
    c.start_worker("worker-b")
    final = wait_until(
        lambda: (
            (r := api.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status
            in states.TERMINAL
            and r
        ),
        timeout=30,
        what="the handed-back run to end",
    )
    assert final.status == "failed" and final.last_error.code == "server_error"
