"""What fuzzing found (issue 12, item 10, and the small ones of item 9), each kept as a
regression test: a 500, a value stored although OpenAI would refuse it, or a document
that did not say what the server does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KEY_ALPHA

BIG = 2**63  # one past the largest signed 64-bit integer: an OverflowError at commit


def _error(r: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    error: dict[str, Any] = r.json()["error"]
    return error


# --- vector store file attributes ---------------------------------------------------------


@pytest.mark.parametrize("attributes", [{}, None])
def test_clearing_attributes_of_a_file_that_has_none(
    client, http, tmp_path: Path, attributes: dict[str, Any] | None
) -> None:
    """Chroma refuses an empty metadata update: `{"attributes": {}}` was a 500."""
    path = tmp_path / "a.txt"
    path.write_text("Kettles boil water. The warranty lasts three years.\n")
    store = client.vector_stores.create(name="attrs")
    with path.open("rb") as fh:
        done = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=fh, poll_interval_ms=100
        )
    assert done.status == "completed", done.last_error
    r = http.post(f"/vector_stores/{store.id}/files/{done.id}", json={"attributes": attributes})
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == {}
    assert client.vector_stores.search(store.id, query="warranty").data  # index intact


# --- integers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("max_prompt_tokens", BIG, "max_prompt_tokens"),
        ("max_completion_tokens", BIG, "max_completion_tokens"),
        ("max_prompt_tokens", 2**31, "max_prompt_tokens"),  # PostgreSQL INTEGER
        (
            "truncation_strategy",
            {"type": "last_messages", "last_messages": BIG},
            "truncation_strategy.last_messages",
        ),
    ],
)
@pytest.mark.parametrize("on_thread", [True, False], ids=["thread_run", "thread_and_run"])
def test_integers_past_storage_are_400(
    http, row_counts, assistant, thread, field: str, value: Any, param: str, on_thread: bool
) -> None:
    before = row_counts()
    body = {"assistant_id": assistant.id, field: value}
    path = f"/threads/{thread.id}/runs" if on_thread else "/threads/runs"
    error = _error(http.post(path, json=body))
    assert error["param"] == param
    assert row_counts() == before


def test_attribute_integers_are_bounded(http) -> None:
    r = http.post("/vector_stores/vs_x/files", json={"file_id": "f", "attributes": {"n": BIG}})
    assert _error(r)["param"] == "attributes.n"


# --- strict types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/assistants", {"model": "m", "top_p": False}, "top_p"),
        ("/assistants", {"model": "m", "temperature": True}, "temperature"),
        ("/assistants", {"model": "m", "temperature": "1"}, "temperature"),
        ("/threads/thread_x/runs", {"assistant_id": "a", "stream": "true"}, "stream"),
        ("/vector_stores/vs_x/search", {"query": "q", "max_num_results": "5"}, "max_num_results"),
    ],
)
def test_numbers_and_booleans_are_strict(
    http, row_counts, path: str, body: dict[str, Any], param: str
) -> None:
    """`"top_p": false` was stored as 0.0, `"temperature": true` as 1.0."""
    before = row_counts()
    assert _error(http.post(path, json=body))["param"] == param
    assert row_counts() == before


def test_integers_still_count_as_numbers(client) -> None:
    a = client.beta.assistants.create(model="m", temperature=1, top_p=1)
    assert (a.temperature, a.top_p) == (1.0, 1.0)


# --- bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"null", b"[]", b"3", b'"x"'])
def test_a_body_that_is_not_an_object_creates_nothing(http, row_counts, body: bytes) -> None:
    before = row_counts()
    r = http.post("/threads", content=body, headers={"content-type": "application/json"})
    assert "JSON object" in _error(r)["message"]
    assert row_counts() == before


def test_an_empty_body_still_creates_a_thread_and_names_missing_fields(http) -> None:
    assert http.post("/threads").status_code == 200
    for content in (b"", b"{}"):
        r = http.post("/assistants", content=content, headers={"content-type": "application/json"})
        error = _error(r)
        assert error["message"] == "Missing required parameter: 'model'.", error
        assert (error["param"], error["code"]) == ("model", "missing_required_parameter")


def test_a_form_body_is_refused_by_its_content_type(http, row_counts) -> None:
    before = row_counts()
    r = http.post("/assistants", data={"model": "m"})
    assert "Unsupported content type" in _error(r)["message"]
    assert row_counts() == before


def test_json_schema_name_errors_name_the_field(http) -> None:
    body = {
        "model": "m",
        "response_format": {"type": "json_schema", "json_schema": {"name": ""}},
    }
    error = _error(http.post("/assistants", json=body))
    assert error["param"] == "response_format.json_schema.name"
    assert "name" in error["message"] and "'auto'" not in error["message"]


# --- image_url --------------------------------------------------------------------------------

REFUSED_URLS = [
    "0",
    "file:///etc/passwd",
    "ftp://example.com/cat.png",
    "data:image/png;base64,AAAA",
    "https://exa mple.com/cat.png",
    "https://",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/x.png",
    "http://127.0.0.1:8000/v1/files",
    "http://localhost/x.png",
    "http://api.localhost./x.png",
    "http://[::1]/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "http://2130706433/x.png",
    "http://0x7f.1/x.png",
    "http://127.1/x.png",
    "http://0.0.0.0/x.png",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_image_urls_must_be_remote_http(http, row_counts, url: str) -> None:
    before = row_counts()
    part = {"type": "image_url", "image_url": {"url": url}}
    body = {"messages": [{"role": "user", "content": [part]}]}
    error = _error(http.post("/threads", json=body))
    assert error["param"] == "messages[0].content[0].image_url.url", error
    assert row_counts() == before


def test_remote_image_urls_are_kept_as_sent(client, thread) -> None:
    url = "https://example.com/a%20cat.png?size=large&v=2#x"
    m = client.beta.threads.messages.create(
        thread.id, role="user", content=[{"type": "image_url", "image_url": {"url": url}}]
    )
    assert m.content[0].image_url.url == url  # type: ignore[union-attr]


def test_local_image_urls_can_be_allowed() -> None:
    from server.config import Settings
    from server.url_policy import check_image_url, policy

    assert Settings.from_env({"ASSISTD_ALLOW_LOCAL_IMAGE_URLS": "1"}).allow_local_image_urls
    assert not Settings.from_env({}).allow_local_image_urls
    saved = policy.allow_local
    try:
        policy.allow_local = True
        assert check_image_url("http://127.0.0.1:9000/x.png")
        with pytest.raises(ValueError):
            check_image_url("file:///etc/passwd")  # the scheme rule stays
    finally:
        policy.allow_local = saved


# --- the document and 405 ----------------------------------------------------------------


def test_openapi_describes_the_errors_and_streams(server) -> None:
    doc = httpx.get(f"{server.base_url}/openapi.json").json()
    text = str(doc)
    assert "HTTPValidationError" not in text and "'422'" not in text
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["error"]["required"] == ["message", "type", "param", "code"]
    for path, item in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            for code in ("400", "401", "404"):
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorResponse"), (method, path, code)
            if "requestBody" in op:
                assert "413" in op["responses"], (method, path)
    runs = doc["paths"]["/v1/threads/{thread_id}/runs"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= set(runs)
    upload = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file", "purpose"]
    download = doc["paths"]["/v1/files/{file_id}/content"]["get"]["responses"]["200"]
    assert list(download["content"]) == ["application/octet-stream"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/assistants", "GET, POST"),
        ("PATCH", "/assistants/asst_x", "DELETE, GET, POST"),
        ("GET", "/threads/thread_x/runs/run_x/cancel", "POST"),
        ("OPTIONS", "/threads/runs", "POST"),  # not /threads/{thread_id}'s GET and DELETE
    ],
)
def test_405_says_what_is_allowed(http, method: str, path: str, allow: str) -> None:
    r = http.request(method, path)
    assert r.status_code == 405 and r.headers.get("allow") == allow, (r.headers, r.text)


# --- uploads: expires_after ------------------------------------------------------------------


def _upload(server, *fields: tuple[str, str]) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(
        f"{server.base_url}/v1/files",
        data=dict(fields),
        files={"file": ("e.txt", b"x")},
        headers={"Authorization": f"Bearer {KEY_ALPHA}"},
    )


def test_expires_after_as_a_json_part_is_honoured(server) -> None:
    r = _upload(
        server,
        ("purpose", "assistants"),
        ("expires_after", '{"anchor": "created_at", "seconds": 7200}'),
    )
    assert r.status_code == 200, r.text
    assert r.json()["expires_at"] == r.json()["created_at"] + 7200


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ((("expires_after", "soon"),), "expires_after"),
        ((("expires_after", '{"anchor": "created_at", "days": 3}'),), "expires_after"),
        ((("expires_after", '{"anchor": "created_at", "seconds": 60}'),), "expires_after.seconds"),
        ((("expires_after[days]", "3"),), "expires_after.days"),
        ((("expires_after[anchor]", "created_at"),), "expires_after.seconds"),
    ],
)
def test_expires_after_is_never_silently_ignored(
    server, row_counts, fields: tuple[tuple[str, str], ...], param: str
) -> None:
    before = row_counts()
    error = _error(_upload(server, ("purpose", "assistants"), *fields))
    assert error["param"] == param, error
    assert row_counts() == before


# --- NUL (found by the PostgreSQL pass) -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/vector_stores", {"file_ids": ["file-\u0000x"]}, "file_ids[0]"),
        ("/assistants", {"model": "m", "name": "a\u0000b"}, "name"),
        ("/threads", {"metadata": {"k\u0000": "v"}}, "metadata"),
    ],
)
def test_nul_in_a_body_is_400(http, row_counts, path: str, body: Any, param: str) -> None:
    """PostgreSQL refuses NUL in any text value, a query parameter included: it was a 500
    there (SQLite stored it)."""
    before = row_counts()
    error = _error(http.post(path, json=body))
    assert (error["param"], error["code"]) == (param, "invalid_value"), error
    assert row_counts() == before


def test_nul_in_the_url_is_refused(http) -> None:
    assert _error(http.get("/assistants/asst_%00x"), 404)["message"].startswith("Invalid URL")
    assert _error(http.get("/assistants", params={"after": "a\u0000"}))["param"] == "after"


def test_nul_in_an_upload_name_is_400(server, row_counts) -> None:
    before = row_counts()
    body = (  # raw: httpx would percent-encode the NUL
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.txt"\r\n'
        b"\r\nx\r\n--b--\r\n"
    )
    r = httpx.post(
        f"{server.base_url}/v1/files",
        content=body,
        headers={
            "Authorization": f"Bearer {KEY_ALPHA}",
            "content-type": "multipart/form-data; boundary=b",
        },
    )
    assert _error(r)["param"] == "file"
    assert row_counts() == before
