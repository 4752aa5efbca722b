"""Temp files of uploads (issue 12, item 9): an upload is copied into
files/.upload-* before it gets its hash name; a process killed mid-copy used to leave
that file (up to ASSISTD_MAX_FILE_BYTES) forever. The next start removes it, and never
one a live upload (another replica on the same volume) is still writing."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import httpx

from server.storage import BlobStore
from tests.conftest import KEY_ALPHA, server_env
from tests.support.server_process import ServerProcess


def test_a_killed_upload_leaves_no_temp_file_after_restart(tmp_path, scripted) -> None:
    """kill -9 while an upload is copied into files/.upload-*: the temp file (up to
    ASSISTD_MAX_FILE_BYTES) used to stay forever. The next start removes it."""
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: cheap to make, slow enough to copy
    env = server_env(scripted[1], ASSISTD_MAX_FILE_BYTES=str(512 * 1024 * 1024))
    server = ServerProcess(tmp_path / "data", env=env).start()
    files = server.data_dir / "files"
    try:

        def send() -> None:
            try:
                with big.open("rb") as fh:
                    httpx.post(
                        f"{server.base_url}/v1/files",
                        data={"purpose": "assistants"},
                        files={"file": ("big.bin", fh)},
                        headers={"Authorization": f"Bearer {KEY_ALPHA}"},
                        timeout=120,
                    )
            except httpx.HTTPError:
                pass  # the server dies under it

        assert server.proc is not None
        pid = server.proc.pid
        for _attempt in range(5):
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            deadline = time.monotonic() + 120
            while not list(files.glob(".upload-*")) and time.monotonic() < deadline:
                time.sleep(0.001)
            os.kill(pid, signal.SIGSTOP)  # freeze it mid-copy, then look
            if list(files.glob(".upload-*")):
                break
            os.kill(pid, signal.SIGCONT)  # the copy ended in between: upload again
            sender.join(60)
        else:
            raise AssertionError("never caught an upload mid-copy")
        server.proc.kill()  # kill -9, mid-copy
        server.proc.wait()
        sender.join(30)
        assert list(files.glob(".upload-*"))  # what the old server left for good

        server.start()
        assert not list(files.glob(".upload-*"))
        assert "removed 1 temp file(s) of interrupted uploads" in server.log()
        ok = httpx.post(
            f"{server.base_url}/v1/files",
            data={"purpose": "assistants"},
            files={"file": ("a.txt", b"after")},
            headers={"Authorization": f"Bearer {KEY_ALPHA}"},
        )
        assert ok.status_code == 200, ok.text
    finally:
        server.stop()


def test_the_sweep_spares_an_upload_in_progress(tmp_path) -> None:
    """Replicas share the files volume: one starting must not delete the temp file
    another is writing. A live writer holds its temp file's lock."""
    store, other_replica = BlobStore(tmp_path), BlobStore(tmp_path)
    (tmp_path / ".upload-orphan").write_bytes(b"left by a dead process")
    swept: list[int] = []

    class Stream(io.RawIOBase):
        def __init__(self) -> None:
            self.parts = [b"first half, ", b"second half"]

        def read(self, size: int = -1) -> bytes:
            if len(self.parts) == 1:  # mid-copy: the other replica starts and sweeps
                swept.append(other_replica.sweep())
            return self.parts.pop(0) if self.parts else b""

    sha, size = store.put(Stream(), 1024)  # type: ignore[arg-type]
    assert swept == [1]  # the orphan only
    assert store.path(sha).read_bytes() == b"first half, second half" and size == 23
    assert not list(tmp_path.glob(".upload-*"))
