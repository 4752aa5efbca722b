"""`assistd ingest` run as a subprocess against the session server: a folder goes in with
a summary, a second run sends nothing, a changed file is replaced and a deleted one removed
with --sync."""

from __future__ import annotations

import subprocess
from pathlib import Path

from openai import OpenAI

from tests.conftest import KEY_ALPHA, walk
from tests.support.server_process import REPO, SERVER_PYTHON, ServerProcess


def ingest(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SERVER_PYTHON, "-m", "server", "ingest", *args],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def files_by_path(client: OpenAI, store_id: str) -> dict[str, str]:
    return {
        f.attributes["path"]: f.status  # type: ignore[index]
        for f in walk(client.vector_stores.files.list(store_id))
    }


def test_a_folder_is_ingested_then_kept_in_sync(
    client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "guide" / "kettle.md").write_text("# Kettle\n\nThe warranty lasts three years.\n")
    (docs / "shipping.txt").write_text("Parcels leave the warehouse within two days.\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (docs / "photo.png").write_bytes(b"\x89PNG")
    (docs / ".hidden.md").write_text("never sent")
    common = ["--base-url", f"{server.base_url}/v1", "--api-key", KEY_ALPHA, "--name", "manuals"]

    first = ingest(server, str(docs), *common)
    assert first.returncode == 1, first.stderr  # one file failed
    assert "2 completed, 0 unchanged, 1 failed, 0 removed, 1 skipped" in first.stdout
    assert "failed   docs/broken.pdf: File 'broken.pdf' is not a readable PDF" in first.stdout
    assert "skipped  docs/photo.png: type '.png' is not supported" in first.stdout
    (store,) = [s for s in walk(client.vector_stores.list()) if s.name == "manuals"]
    assert files_by_path(client, store.id) == {
        "docs/guide/kettle.md": "completed",
        "docs/shipping.txt": "completed",
        "docs/broken.pdf": "failed",
    }
    uploaded = len(walk(client.files.list()))

    (docs / "broken.pdf").unlink()
    again = ingest(server, str(docs), *common)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 completed, 2 unchanged, 0 failed, 0 removed" in again.stdout
    assert len(walk(client.files.list())) == uploaded  # nothing was sent

    (docs / "guide" / "kettle.md").write_text("# Kettle\n\nThe warranty now lasts five years.\n")
    (docs / "shipping.txt").unlink()
    synced = ingest(server, str(docs), *common, "--sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "1 completed, 0 unchanged, 0 failed, 2 removed" in synced.stdout
    assert files_by_path(client, store.id) == {"docs/guide/kettle.md": "completed"}
    hits = client.vector_stores.search(store.id, query="how long is the warranty?").data
    assert hits and "five years" in hits[0].content[0].text
    assert len(walk(client.files.list())) == uploaded - 2  # old versions deleted, not leaked
