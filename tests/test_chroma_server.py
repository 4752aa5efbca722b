"""Production index: with CHROMA_URL the server keeps its chunks in a real `chroma run`
server instead of the embedded client, and two replicas see each other's files."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.server_process import ServerProcess
from tests.test_vector_stores import SHIPPING, WARRANTY, upload


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = _free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("chroma run did not start: " + (path / "chroma.log").read_text())
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_replicas_share_one_chroma_server(
    chroma_url: str, tmp_path_factory: pytest.TempPathFactory, scripted, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # Two servers with separate data dirs (no shared embedded index) but one database
    # file and one file store would be the compose layout; here the second replica gets
    # the first one's data dir for files and database, and the index only via Chroma.
    data = tmp_path_factory.mktemp("replica")
    env = server_env(scripted[1], CHROMA_URL=chroma_url)
    first = ServerProcess(data, env=env).start()
    second = ServerProcess(data, env=env, args=["--no-worker"]).start()
    try:
        a: OpenAI = make_client(first.base_url, KEY_ALPHA)
        b: OpenAI = make_client(second.base_url, KEY_ALPHA)
        files = [
            upload(a, tmp_path, "warranty.md", WARRANTY),
            upload(a, tmp_path, "shipping.md", SHIPPING),
        ]
        store = a.vector_stores.create(file_ids=[f.id for f in files])
        for f in files:
            vsf = a.vector_stores.files.poll(f.id, vector_store_id=store.id, poll_interval_ms=100)
            assert vsf.status == "completed", vsf.last_error
        assert not (data / "chroma").exists()  # nothing went to an embedded index
        hits = b.vector_stores.search(store.id, query="how long is the warranty")
        assert hits.data[0].file_id == files[0].id
        # A detach through one replica is seen by the other's keyword index too.
        b.vector_stores.files.delete(files[0].id, vector_store_id=store.id)
        hits = a.vector_stores.search(store.id, query="warranty kettle three years")
        assert all(h.file_id == files[1].id for h in hits.data)
    finally:
        second.stop()
        first.stop()
