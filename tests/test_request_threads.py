"""The request thread pool: sized by ASSISTD_REQUEST_THREADS (default one per usable CPU,
a container's CPU quota included), and a server with a single request thread still
serves mixed concurrent traffic."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from server.config import Settings, cgroup_cpu_quota, usable_cpus
from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.server_process import ServerProcess, run_server_python


def test_default_is_one_thread_per_usable_cpu_and_env_overrides_it(tmp_path: Path) -> None:
    base = {"ASSISTD_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).request_threads == usable_cpus() >= 2
    assert Settings.from_env({**base, "ASSISTD_REQUEST_THREADS": "5"}).request_threads == 5


def test_a_cgroup_cpu_quota_caps_the_count(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    for text, cpus in (("200000 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1)):
        cpu_max.write_text(text)
        assert cgroup_cpu_quota(cpu_max) == cpus
    cpu_max.write_text("max 100000\n")  # no quota
    assert cgroup_cpu_quota(cpu_max) is None
    assert cgroup_cpu_quota(tmp_path / "missing") is None


SIZE_PROBE = """
import asyncio, anyio.to_thread
from server.app import create_app

async def main():
    app = create_app()
    async with app.router.lifespan_context(app):
        print(anyio.to_thread.current_default_thread_limiter().total_tokens)

asyncio.run(main())
"""


def test_the_app_sizes_the_pool_that_runs_its_routes(tmp_path: Path) -> None:
    """In a process of its own: the app's start-up sets process-wide state."""
    env = {
        "ASSISTD_DATA_DIR": str(tmp_path),
        "ASSISTD_SANDBOX": "off",
        "ASSISTD_REQUEST_THREADS": "3",
        "PATH": "/usr/bin:/bin",
    }
    done = run_server_python(["-c", SIZE_PROBE], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3"]


def test_one_request_thread_serves_concurrent_mixed_traffic(
    tmp_path: Path, scripted, model
) -> None:
    """Creates racing for one thread's lock, lists and a multi-megabyte upload, all at
    once, through a single request thread: nothing deadlocks, nothing fails; then a run
    on the same server completes."""
    size = 8 * 1024 * 1024
    env = server_env(scripted[1], ASSISTD_REQUEST_THREADS="1", ASSISTD_MAX_FILE_BYTES=str(2 * size))
    proc = ServerProcess(tmp_path, env=env).start()
    try:
        client = make_client(proc.base_url, KEY_ALPHA)
        thread = client.beta.threads.create()
        assistant = client.beta.assistants.create(model="gpt-4o")
        model.text("done")

        def create(i: int) -> str:
            return client.beta.threads.messages.create(
                thread_id=thread.id, role="user", content=str(i)
            ).id

        def upload() -> int:
            blob = io.BytesIO(b"x" * size)
            return client.files.create(file=("big.txt", blob), purpose="assistants").bytes

        with ThreadPoolExecutor(16) as pool:
            created = [pool.submit(create, i) for i in range(24)]
            listed = [pool.submit(client.beta.threads.messages.list, thread_id=thread.id)]
            uploaded = pool.submit(upload)
            ids = {f.result(timeout=60) for f in created}
            assert all(f.result(timeout=60).object == "list" for f in listed)
            assert uploaded.result(timeout=60) == size
        assert len(ids) == 24
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed"
        everything = client.beta.threads.messages.list(thread_id=thread.id, limit=100).data
        assert ids <= {m.id for m in everything} and len(everything) == 25
        with pytest.raises(openai.NotFoundError):
            client.beta.threads.messages.list(thread_id="thread_missing")
    finally:
        proc.stop()
