"""Request size limits (issue 12, item 2): each crossed, each a 4xx in the envelope
naming the param, and nothing stored. docs/security.md lists them with their sources."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import KEY_ALPHA

MAX_JSON = 4 * 1024 * 1024  # ASSISTD_MAX_JSON_BYTES's default; the session server keeps it
LONG = "x" * 256_001
FN = {"type": "function", "function": {"name": "f"}}


def _user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# (name, path, body, param, code)
CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "assistant instructions",
        "/assistants",
        {"model": "m", "instructions": LONG},
        "instructions",
        "string_above_max_length",
    ),
    (
        "function description",
        "/assistants",
        {
            "model": "m",
            "tools": [{"type": "function", "function": {"name": "f", "description": "d" * 1025}}],
        },
        "tools[0].function.description",
        "string_above_max_length",
    ),
    (
        "129 tools",
        "/assistants",
        {"model": "m", "tools": [{"type": "code_interpreter"}] * 129},
        "tools",
        "array_above_max_length",
    ),
    (
        "17th metadata key",
        "/threads",
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
        "invalid_value",
    ),
    (
        "message text",
        "/threads",
        {"messages": [_user(LONG)]},
        "messages[0].content",
        "string_above_max_length",
    ),
    (
        "text part",
        "/threads",
        {"messages": [_user([{"type": "text", "text": LONG}])]},
        "messages[0].content[0].text",
        "string_above_max_length",
    ),
    (
        "11 attachments",
        "/threads/thread_x/messages",
        {
            **_user("x"),
            "attachments": [{"file_id": f"file-{i}", "tools": []} for i in range(11)],
        },
        "attachments",
        "array_above_max_length",
    ),
    (
        "image URL length",
        "/threads",
        {
            "messages": [
                _user([{"type": "image_url", "image_url": {"url": "https://e.com/" + "a" * 8200}}])
            ]
        },
        "messages[0].content[0].image_url.url",
        "string_above_max_length",
    ),
    (
        "run instructions",
        "/threads/runs",
        {"assistant_id": "asst_x", "instructions": LONG},
        "instructions",
        "string_above_max_length",
    ),
    (
        "run additional_instructions",
        "/threads/thread_x/runs",
        {"assistant_id": "asst_x", "additional_instructions": LONG},
        "additional_instructions",
        "string_above_max_length",
    ),
    (
        "21 run tools",
        "/threads/thread_x/runs",
        {"assistant_id": "asst_x", "tools": [FN] * 21},
        "tools",
        "array_above_max_length",
    ),
    (
        "501 vector store file_ids",
        "/vector_stores",
        {"file_ids": ["file-x"] * 501},
        "file_ids",
        "array_above_max_length",
    ),
    (
        "2001 batch file_ids",
        "/vector_stores/vs_x/file_batches",
        {"file_ids": ["file-x"] * 2001},
        "file_ids",
        "array_above_max_length",
    ),
    (
        "11 search queries",
        "/vector_stores/vs_x/search",
        {"query": ["q"] * 11},
        "query",
        "array_above_max_length",
    ),
    (
        "search query length",
        "/vector_stores/vs_x/search",
        {"query": "q" * 4097},
        "query",
        "string_above_max_length",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "param", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_limit_crossed_is_400_naming_param(
    http, row_counts, path: str, body: dict[str, Any], param: str, code: str
) -> None:
    before = row_counts()
    r = http.post(path, json=body)
    assert r.status_code == 400, r.text[:500]
    error = r.json()["error"]
    assert (error["param"], error["code"]) == (param, code), error
    assert row_counts() == before


def test_limits_are_inclusive(client, thread) -> None:
    a = client.beta.assistants.create(model="m", instructions="i" * 256_000)
    assert len(client.beta.assistants.retrieve(a.id).instructions or "") == 256_000
    m = client.beta.threads.messages.create(thread.id, role="user", content="c" * 256_000)
    assert len(m.content[0].text.value) == 256_000  # type: ignore[union-attr]


def _raw(server, body: Any, **headers: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(
        f"{server.base_url}/v1/assistants",
        content=body,
        headers={
            "Authorization": f"Bearer {KEY_ALPHA}",
            "content-type": "application/json",
            **headers,
        },
        timeout=60,
    )


def _too_large(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert "ASSISTD_MAX_JSON_BYTES" in error["message"]


def test_body_over_the_cap_is_413_before_it_is_read(server, row_counts) -> None:
    """50 MB of unknown fields used to be read, parsed and accepted (server RSS +1 GB)."""
    before = row_counts()
    filler = b"a" * (5 * 1024 * 1024)
    _too_large(_raw(server, b'{"model": "m", "junk": "' + filler + b'"}'))
    assert row_counts() == before


def test_chunked_body_over_the_cap_is_413(server, row_counts) -> None:
    """No Content-Length to check up front: counted as it streams in."""

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "m", "junk": "'
        for _ in range(80):
            yield b"a" * 65536
        yield b'"}'

    before = row_counts()
    _too_large(_raw(server, chunks()))
    assert row_counts() == before


def test_body_just_under_the_cap_is_read(server) -> None:
    head = b'{"model": "m", "junk": "'
    body = head + b"a" * (MAX_JSON - len(head) - 2) + b'"}'
    assert len(body) == MAX_JSON
    r = _raw(server, body)
    assert r.status_code == 200, r.text[:300]
