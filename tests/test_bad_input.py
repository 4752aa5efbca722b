"""Bad input: every malformed request gets OpenAI's 4xx envelope and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

BIG_METADATA = {f"k{i}": "v" for i in range(17)}

CASES: list[tuple[str, str, str, Any, int, str | None]] = [
    # (name, method, path, json body or raw bytes, status, param)
    ("json syntax", "POST", "/assistants", b"{not json", 400, None),
    ("body not an object", "POST", "/assistants", [1, 2], 400, None),
    ("missing model", "POST", "/assistants", {"name": "x"}, 400, "model"),
    ("model wrong type", "POST", "/assistants", {"model": 5}, 400, "model"),
    (
        "temperature too high",
        "POST",
        "/assistants",
        {"model": "m", "temperature": 3},
        400,
        "temperature",
    ),
    (
        "temperature wrong type",
        "POST",
        "/assistants",
        {"model": "m", "temperature": "hot"},
        400,
        "temperature",
    ),
    ("name too long", "POST", "/assistants", {"model": "m", "name": "n" * 257}, 400, "name"),
    (
        "unknown tool type",
        "POST",
        "/assistants",
        {"model": "m", "tools": [{"type": "browser"}]},
        400,
        "tools[0].type",
    ),
    (
        "bad function name",
        "POST",
        "/assistants",
        {"model": "m", "tools": [{"type": "function", "function": {"name": "has space"}}]},
        400,
        "tools[0].function.name",
    ),
    (
        "too many tools",
        "POST",
        "/assistants",
        {"model": "m", "tools": [{"type": "code_interpreter"}] * 129},
        400,
        "tools",
    ),
    (
        "too many metadata keys",
        "POST",
        "/assistants",
        {"model": "m", "metadata": BIG_METADATA},
        400,
        "metadata",
    ),
    ("metadata key too long", "POST", "/threads", {"metadata": {"k" * 65: "v"}}, 400, "metadata"),
    (
        "metadata value too long",
        "POST",
        "/threads",
        {"metadata": {"k": "v" * 513}},
        400,
        "metadata",
    ),
    ("metadata value not a string", "POST", "/threads", {"metadata": {"k": 1}}, 400, "metadata.k"),
    (
        "bad response_format",
        "POST",
        "/assistants",
        {"model": "m", "response_format": {"type": "yaml"}},
        400,
        "response_format.type",
    ),
    (
        "message role",
        "POST",
        "/threads",
        {"messages": [{"role": "system", "content": "x"}]},
        400,
        "messages[0].role",
    ),
    (
        "message content missing",
        "POST",
        "/threads",
        {"messages": [{"role": "user"}]},
        400,
        "messages[0].content",
    ),
    (
        "empty content array",
        "POST",
        "/threads",
        {"messages": [{"role": "user", "content": []}]},
        400,
        "messages[0].content",
    ),
    (
        "unknown content part",
        "POST",
        "/threads",
        {"messages": [{"role": "user", "content": [{"type": "audio"}]}]},
        400,
        "messages[0].content[0].type",
    ),
    (
        "too many code files",
        "POST",
        "/threads",
        {"tool_resources": {"code_interpreter": {"file_ids": ["f"] * 21}}},
        400,
        "tool_resources.code_interpreter.file_ids",
    ),
    (
        "store helper names an unknown file",
        "POST",
        "/threads",
        {"tool_resources": {"file_search": {"vector_stores": [{"file_ids": ["file-nope"]}]}}},
        400,
        "tool_resources.file_search.vector_stores[0].file_ids[0]",
    ),
    (
        "store helper names a model the server does not offer",
        "POST",
        "/assistants",
        {
            "model": "gpt-4o",
            "tool_resources": {
                "file_search": {"vector_stores": [{"embedding_model": "/etc/secret-model"}]}
            },
        },
        400,
        "tool_resources.file_search.vector_stores[0].embedding_model",
    ),
    ("unknown assistant", "GET", "/assistants/asst_missing", None, 404, None),
    ("unknown thread", "GET", "/threads/thread_missing", None, 404, None),
    (
        "message on unknown thread",
        "POST",
        "/threads/thread_missing/messages",
        {"role": "user", "content": "x"},
        404,
        None,
    ),
    ("unknown file", "GET", "/files/file-missing/content", None, 404, None),
    ("bad after cursor", "GET", "/assistants?after=asst_missing", None, 400, "after"),
    ("bad before cursor", "GET", "/assistants?before=asst_missing", None, 400, "before"),
    ("limit too large", "GET", "/assistants?limit=101", None, 400, "limit"),
    ("limit zero", "GET", "/assistants?limit=0", None, 400, "limit"),
    ("limit not a number", "GET", "/assistants?limit=ten", None, 400, "limit"),
    ("bad order", "GET", "/assistants?order=up", None, 400, "order"),
    ("unknown route", "GET", "/nothing-here", None, 404, None),
    ("wrong method", "PUT", "/assistants", {"model": "m"}, 405, None),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_request_gets_envelope_and_changes_nothing(
    http, row_counts, method: str, path: str, body: Any, status: int, param: str | None
) -> None:
    before = row_counts()
    if isinstance(body, bytes):
        r = http.request(method, path, content=body, headers={"content-type": "application/json"})
    else:
        r = http.request(method, path, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    assert row_counts() == before


def test_unknown_fields_are_ignored(http) -> None:
    r = http.post("/assistants", json={"model": "m", "future_field": {"x": 1}})
    assert r.status_code == 200 and "future_field" not in r.json()


def test_include_query_style_is_accepted(http) -> None:
    r = http.get("/assistants", params={"include[]": "whatever", "limit": 1})
    assert r.status_code == 200
