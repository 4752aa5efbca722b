"""Ingestion as a shared service: fair between projects, stopped as soon as its file is
gone, visible while it runs, and gone within the grace period on SIGTERM. Real server
processes, the bundled model, Chroma; big files are what keeps the encoder busy."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from bench.common import cpu_seconds
from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import TEST_DATABASE_URL, ServerProcess, database_for
from tests.test_vector_stores import chroma_records, upload

TINY = "The gate code is 4471.\n"  # 23 bytes


def big_text(kib: int, seed: int = 0) -> str:
    """About `kib` KiB of varied prose: minutes of embedding on a CPU."""
    words = ["turbine", "bearing", "inspection", "compound", "winter", "blade", "crack", "dye"]
    lines = []
    for i in range(kib * 1024 // 60):
        w = [words[(i * 7 + j * 3 + seed) % len(words)] for j in range(5)]
        lines.append(f"Unit {i}-{seed}: the {w[0]} needs {w[1]} {w[2]} of {w[3]} {w[4]}.")
    return "\n".join(lines)


def until(check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s")


def progress(client: OpenAI, store_id: str, file_id: str) -> tuple[str, dict[str, Any], int]:
    f = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
    return f.status, (f.model_extra or {}).get("progress") or {}, f.usage_bytes


def started(client: OpenAI, store_id: str, file_id: str) -> bool:
    status, done, _ = progress(client, store_id, file_id)
    return status == "in_progress" and done.get("chunks_done", 0) > 0


def time_to_complete(client: OpenAI, store_id: str, file_id: str, timeout: float) -> float:
    t0 = time.monotonic()
    until(lambda: progress(client, store_id, file_id)[0] == "completed", timeout, every=0.1)
    return time.monotonic() - t0


def test_a_small_file_of_another_project_completes_while_big_ones_ingest(
    client: OpenAI, other_client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    """Project alpha fills every slot with big files; beta's tiny file still completes
    within seconds, while alpha's are still in progress. Alpha's progress is visible as it
    goes. Then deleting alpha's store stops the work at once: the server's CPU goes quiet
    and the next file is ingested in seconds."""
    warm = upload(client, tmp_path, "warm.txt", TINY)  # the model is loaded before timing
    warm_store = client.vector_stores.create(file_ids=[warm.id])
    until(lambda: progress(client, warm_store.id, warm.id)[0] == "completed", 300)

    bigs = [upload(client, tmp_path, f"big{i}.txt", big_text(900, i)) for i in range(2)]
    store = client.vector_stores.create(file_ids=[b.id for b in bigs])
    for b in bigs:
        until(lambda b=b: started(client, store.id, b.id), 120)
    # Progress: the extension fields and usage_bytes grow while the file is in progress.
    _, first, used = progress(client, store.id, bigs[0].id)
    assert 0 < first["fraction"] < 1 and used > 0
    until(lambda: progress(client, store.id, bigs[0].id)[2] > used, 60)
    assert re.search(rf"ingesting {bigs[0].id} \(big0.txt, \d+ bytes\)", server.log())

    tiny = upload(other_client, tmp_path, "tiny.txt", TINY)
    other_store = other_client.vector_stores.create(file_ids=[tiny.id])
    took = time_to_complete(other_client, other_store.id, tiny.id, 120)
    assert took < 15, f"beta's tiny file waited {took:.1f} s behind alpha's big ones"
    assert all(progress(client, store.id, b.id)[0] == "in_progress" for b in bigs)

    # Deleting the store stops both ingestions within seconds.
    client.vector_stores.delete(store.id)
    for b in bigs:
        until(lambda b=b: f"ingestion of {b.id} into {store.id}" in server.log(), 15)
    assert server.proc is not None
    before = cpu_seconds(server.proc.pid)
    time.sleep(3)
    assert cpu_seconds(server.proc.pid) - before < 1.0, "the server kept working"
    assert chroma_records(server, store.id) is None  # nothing of the store was left behind
    after = upload(client, tmp_path, "after.txt", TINY)
    after_store = client.vector_stores.create(file_ids=[after.id])
    assert time_to_complete(client, after_store.id, after.id, 120) < 15


def test_deleting_a_file_mid_ingestion_stops_its_chunks_growing(
    client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    big = upload(client, tmp_path, "big.txt", big_text(900, 7))
    store = client.vector_stores.create(file_ids=[big.id])
    until(lambda: started(client, store.id, big.id), 300)
    client.files.delete(big.id)
    until(lambda: f"ingestion of {big.id} into {store.id}" in server.log(), 15)
    counts = [chroma_records(server, store.id) or 0]
    time.sleep(2)
    counts.append(chroma_records(server, store.id) or 0)
    assert counts == [0, 0], counts


@pytest.fixture
def graceful(
    tmp_path_factory: pytest.TempPathFactory, scripted: Any
) -> tuple[ServerProcess, dict[str, str]]:
    env = server_env(scripted[1], ASSISTD_SHUTDOWN_GRACE_SECONDS="4")
    return ServerProcess(tmp_path_factory.mktemp("graceful"), env=env), env


def test_sigterm_during_an_ingestion_exits_within_the_grace_and_another_start_redoes_it(
    graceful: tuple[ServerProcess, dict[str, str]], model: ScriptedModel, tmp_path: Path
) -> None:
    """A run and an ingestion in flight share the one grace period (they used to get one
    each, one after the other), and the ingestion's thread does not hold the process."""
    server, env = graceful
    server.start()
    try:
        client = make_client(server.base_url, KEY_ALPHA)
        big = upload(client, tmp_path, "big.txt", big_text(900, 3))
        store = client.vector_stores.create(file_ids=[big.id])
        until(lambda: started(client, store.id, big.id), 300)
        model.stall(60)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        model.wait_for_requests(1, timeout=30)
        assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == (
            "in_progress"
        )
        assert server.proc is not None
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)
        took = time.monotonic() - t0
        assert took < 4 + 3, f"exited {took:.1f} s after SIGTERM (grace 4 s)"
        assert "stopped for shutdown" in server.log()
        # The lease lapsed at once: the next process takes the file over immediately.
        again = ServerProcess(server.data_dir, env=env)
        again.start()
        try:
            until(lambda: again.log().count(f"ingesting {big.id}") >= 2, 60)
            client = make_client(again.base_url, KEY_ALPHA)
            assert progress(client, store.id, big.id)[0] == "in_progress"
            client.vector_stores.delete(store.id)
        finally:
            again.stop()
    finally:
        server.stop()


@pytest.mark.skipif(TEST_DATABASE_URL is None, reason="replicas share PostgreSQL")
def test_a_delete_on_another_replica_stops_the_ingestion(
    tmp_path_factory: pytest.TempPathFactory, scripted: Any, tmp_path: Path
) -> None:
    """The replica that ingests learns of a delete made through another one from the
    database alone (its progress checkpoint and lease renewal are compare-and-set)."""
    root = tmp_path_factory.mktemp("replicas")
    env = server_env(scripted[1], DATABASE_URL=database_for(root))
    worker = ServerProcess(root / "worker", env=env).start()
    api = ServerProcess(root / "api", env=env, args=["--no-worker"]).start()
    try:
        client = make_client(worker.base_url, KEY_ALPHA)
        big = upload(client, tmp_path, "big.txt", big_text(900, 5))
        store = client.vector_stores.create(file_ids=[big.id])
        until(lambda: started(client, store.id, big.id), 300)
        make_client(api.base_url, KEY_ALPHA).vector_stores.delete(store.id)
        until(lambda: f"ingestion of {big.id} into {store.id}" in worker.log(), 15)
        assert "discarded" in worker.log()
    finally:
        api.stop()
        worker.stop()
