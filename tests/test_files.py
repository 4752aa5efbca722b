"""Files: multipart upload, listing, download, delete, limits and safe storage."""

from __future__ import annotations

import hashlib

import openai
import pytest
from openai import OpenAI

from tests.conftest import KEY_ALPHA, walk


def test_upload_retrieve_download(client: OpenAI, text_file, server) -> None:
    f = client.files.create(file=text_file.open("rb"), purpose="assistants")
    assert f.id.startswith("file-") and f.object == "file"
    assert (f.filename, f.bytes, f.purpose, f.status) == (
        "notes.txt",
        text_file.stat().st_size,
        "assistants",
        "processed",
    )
    assert client.files.retrieve(f.id) == f
    assert client.files.content(f.id).read() == text_file.read_bytes()
    sha = hashlib.sha256(text_file.read_bytes()).hexdigest()
    assert (server.data_dir / "files" / sha[:2] / sha).read_bytes() == text_file.read_bytes()


def test_list_filters_by_purpose_and_pages(client: OpenAI, tmp_path) -> None:
    made = []
    for i in range(3):
        p = tmp_path / f"b{i}.jsonl"
        p.write_text(f'{{"i": {i}}}\n')
        made.append(client.files.create(file=p.open("rb"), purpose="batch").id)
    batch = [f.id for f in client.files.list(purpose="batch")]
    assert batch[:3] == made[::-1]
    walked = [f.id for f in walk(client.files.list(purpose="batch", limit=1, order="asc"))]
    assert walked[-3:] == made
    assert all(f.purpose == "assistants" for f in client.files.list(purpose="assistants"))


def test_filename_never_becomes_a_path(client: OpenAI, server) -> None:
    f = client.files.create(file=("../../etc/evil.txt", b"payload"), purpose="assistants")
    assert f.filename == "evil.txt"
    assert not (server.data_dir.parent / "etc").exists()
    assert client.files.content(f.id).read() == b"payload"


def test_same_bytes_twice_and_delete_one(client: OpenAI) -> None:
    a = client.files.create(file=("a.txt", b"shared bytes"), purpose="assistants")
    b = client.files.create(file=("b.txt", b"shared bytes"), purpose="user_data")
    d = client.files.delete(a.id)
    assert (d.id, d.object, d.deleted) == (a.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(a.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(a.id)
    assert client.files.content(b.id).read() == b"shared bytes"


def test_expires_after(client: OpenAI) -> None:
    f = client.files.create(
        file=("e.txt", b"x"),
        purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert f.expires_at == f.created_at + 3600
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(
            file=("e.txt", b"x"),
            purpose="assistants",
            expires_after={"anchor": "created_at", "seconds": 5},
        )
    assert err.value.param == "expires_after.seconds"


def test_bad_purpose_and_missing_file(client: OpenAI, http, row_counts) -> None:
    before = row_counts()
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("x.txt", b"x"), purpose="fine-tune-results")
    assert err.value.param == "purpose" and err.value.code == "invalid_value"
    r = http.post("/files", data={"purpose": "assistants"}, files={"other": ("x", b"x")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = http.post("/files", files={"file": ("x", b"x")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = http.post(
        "/files", content=b"not multipart", headers={"content-type": "multipart/form-data"}
    )
    assert r.status_code == 400
    assert row_counts() == before


def test_size_limit_is_413_and_keeps_nothing(client: OpenAI, server, row_counts) -> None:
    before = row_counts()
    blobs_before = sorted(p.name for p in (server.data_dir / "files").rglob("*") if p.is_file())
    too_big = b"x" * (1024 * 1024 + 1)  # the test server's limit is 1 MiB
    with pytest.raises(openai.APIStatusError) as err:
        client.files.create(file=("big.bin", too_big), purpose="assistants")
    assert err.value.status_code == 413 and err.value.code == "file_too_large"
    assert row_counts() == before
    blobs_after = sorted(p.name for p in (server.data_dir / "files").rglob("*") if p.is_file())
    assert blobs_after == blobs_before


def test_size_limit_applies_without_content_length(server, row_counts) -> None:
    """A chunked upload cannot dodge the limit by not declaring its size."""
    import httpx

    def body():
        yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
        for _ in range(17):
            yield b"y" * 65536
        yield b"\r\n--b--\r\n"

    before = row_counts()
    r = httpx.post(
        f"{server.base_url}/v1/files",
        content=body(),
        headers={
            "Authorization": f"Bearer {KEY_ALPHA}",
            "content-type": "multipart/form-data; boundary=b",
        },
    )
    assert r.status_code == 413, r.text
    assert row_counts() == before
