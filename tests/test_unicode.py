"""Text and numbers that could be stored but not read back (issue 12, item 1).

Python's json reads an unpaired surrogate (`"\\udfff"`) and NaN; orjson, which reads the
JSON columns, refuses both. Such a request used to answer 500 yet store its row, and
every later list that met the row answered 500 too. Now each is a 400 naming the param,
nothing is stored, and `assistd doctor` repairs rows stored before.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import KEY_BETA
from tests.support.server_process import run_server_python

LONE = "\udfff"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"x": value}}
    return value


def post(http, path: str, body: Any):  # type: ignore[no-untyped-def]
    """json.dumps as Python writes it (`\udfff`, NaN): httpx's own encoder refuses both."""
    headers = {"content-type": "application/json"}
    return http.post(path, content=json.dumps(body).encode(), headers=headers)


def fn(**function: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", **function}}


# (name, path, body, param)
CASES: list[tuple[str, str, Any, str | None]] = [
    ("metadata value", "/assistants", {"model": "m", "metadata": {"k": LONE}}, "metadata.k"),
    ("metadata key", "/assistants", {"model": "m", "metadata": {LONE: "v"}}, "metadata"),
    ("assistant name", "/assistants", {"model": "m", "name": "a" + LONE}, "name"),
    ("instructions", "/assistants", {"model": "m", "instructions": "\ud800 x"}, "instructions"),
    (
        "function description",
        "/assistants",
        {"model": "m", "tools": [fn(description=LONE)]},
        "tools[0].function.description",
    ),
    (
        "function parameter name",
        "/assistants",
        {"model": "m", "tools": [fn(parameters={"properties": {LONE: {}}})]},
        "tools[0].function.parameters.properties",
    ),
    (
        "NaN in function parameters",
        "/assistants",
        {"model": "m", "tools": [fn(parameters={"maximum": float("nan")})]},
        "tools[0].function.parameters.maximum",
    ),
    (
        "Infinity in a JSON schema",
        "/assistants",
        {
            "model": "m",
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": {"maximum": float("inf")}},
            },
        },
        "response_format.json_schema.schema.maximum",
    ),
    (
        "message content",
        "/threads",
        {"messages": [{"role": "user", "content": "lone \ud800"}]},
        "messages[0].content",
    ),
    (
        "text part",
        "/threads",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": LONE}]}]},
        "messages[0].content[0].text",
    ),
    ("thread metadata", "/threads", {"metadata": {"k": LONE}}, "metadata.k"),
    (
        "thread and run",
        "/threads/runs",
        {"assistant_id": "asst_x", "thread": {"messages": [{"role": "user", "content": LONE}]}},
        "thread.messages[0].content",
    ),
    (
        "tool output",
        "/threads/thread_x/runs/run_x/submit_tool_outputs",
        {"tool_outputs": [{"tool_call_id": "c", "output": LONE}]},
        "tool_outputs[0].output",
    ),
    ("vector store name", "/vector_stores", {"name": LONE}, "name"),
    (
        "file attributes",
        "/vector_stores/vs_x/files",
        {"file_id": "file-x", "attributes": {"k": LONE}},
        "attributes.k",
    ),
    ("search query", "/vector_stores/vs_x/search", {"query": [LONE]}, "query[0]"),
]


@pytest.mark.parametrize(
    ("path", "body", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_unstorable_values_are_400_and_store_nothing(
    http, row_counts, path: str, body: Any, param: str | None
) -> None:
    before = row_counts()
    r = post(http, path, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_value", error
    assert row_counts() == before
    assert http.get("/assistants").status_code == 200


def test_raw_utf8_surrogate_bytes_are_refused_too(http, row_counts) -> None:
    """`\\xed\\xa0\\x80` is a surrogate encoded as UTF-8: invalid UTF-8, but Python's json
    reads bytes with surrogatepass."""
    before = row_counts()
    body = b'{"model": "m", "metadata": {"k": "\xed\xa0\x80"}}'
    r = http.post("/assistants", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata.k", r.text
    assert row_counts() == before


def test_pairs_and_ordinary_unicode_are_kept(client) -> None:
    name = "caf\u00e9 \U0001f600 \u4e2d"
    a = client.beta.assistants.create(model="m", name=name, metadata={"emoji": "\U0001f600"})
    assert client.beta.assistants.retrieve(a.id).name == name
    assert any(x.id == a.id for x in client.beta.assistants.list(limit=100).data)


def test_deep_nesting_is_refused_before_it_is_stored(http, row_counts) -> None:
    """pydantic cannot serialise a value nested ~250 levels deep: stored, it failed
    every read."""
    before = row_counts()
    r = http.post("/assistants", json={"model": "m", "tools": [fn(parameters=_nested(150))]})
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]
    assert row_counts() == before
    ok = http.post("/assistants", json={"model": "m", "tools": [fn(parameters=_nested(20))]})
    assert ok.status_code == 200, ok.text
    assert http.get(f"/assistants/{ok.json()['id']}").status_code == 200


def test_upload_name_with_undecodable_bytes_stays_listable(http) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\xed\xa0\x80.txt"\r\n'
        b"\r\nhello\r\n--b--\r\n"
    )
    r = http.post(
        "/files", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert r.status_code in (200, 400), r.text
    assert http.get("/files").status_code == 200


# --- assistd doctor ----------------------------------------------------------------------

POISONED_JSON = '{"k": "\\udfff"}'  # what json.dumps wrote for {"k": "\udfff"}


def _plant(database_url: str, asst_id: str, *, bad_name: bool) -> None:
    """A poisoned row as the old server stored it, written straight into the database."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                "INSERT INTO assistants (id, project, created_at, model, tools, metadata, name)"
                " VALUES (?, 'beta', 1, 'm', '[]', ?, CAST(? AS TEXT))",
                (asst_id, POISONED_JSON, b"bad \xed\xa0\x80" if bad_name else b"ok"),
            )
        return
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO assistants (id, project, created_at, model, tools, metadata)"
                    " VALUES (:id, 'beta', 1, 'm', CAST('[]' AS JSON), CAST(:m AS JSON))"
                ),
                {"id": asst_id, "m": POISONED_JSON},
            )
    finally:
        engine.dispose()


def _doctor(server, *args: str) -> str:  # type: ignore[no-untyped-def]
    env = {"DATABASE_URL": server.database_url, "ASSISTD_DATA_DIR": str(server.data_dir)}
    done = run_server_python(["-m", "server", "doctor", *args], {**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_doctor_repairs_rows_that_broke_listings(server, other_client) -> None:
    import httpx

    sqlite = server.database_url.startswith("sqlite")
    asst_id = "asst_poisoned000000000000001"
    _plant(server.database_url, asst_id, bad_name=sqlite)
    beta = httpx.Client(base_url=f"{server.base_url}/v1", timeout=30)
    headers = {"Authorization": f"Bearer {KEY_BETA}"}
    try:
        assert beta.get("/assistants", headers=headers).status_code >= 500  # the symptom

        report = _doctor(server, "--dry-run")
        assert f"would repair assistants {asst_id} metadata" in report, report
        if sqlite:
            assert f"assistants {asst_id} name" in report, report
        assert beta.get("/assistants", headers=headers).status_code >= 500  # unchanged

        report = _doctor(server)
        assert f"repaired assistants {asst_id} metadata" in report, report
        listing = beta.get("/assistants", headers=headers)
        assert listing.status_code == 200, listing.text
        repaired = other_client.beta.assistants.retrieve(asst_id)
        assert repaired.metadata == {"k": "\ufffd"}
        if sqlite:
            assert repaired.name == "bad \ufffd"
        assert "0 value(s)" in _doctor(server, "--dry-run")
    finally:
        beta.close()
        # Never leave a poisoned row for the tests after this one.
        engine = create_engine(server.database_url)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM assistants WHERE id = :id"), {"id": asst_id})
        engine.dispose()


def test_model_output_with_a_lone_surrogate_is_stored_readably(
    client, model, assistant, thread
) -> None:
    """A model's reply is not a request: nothing refuses it, so storage repairs it."""
    model.text("broken \ud800 text", chunks=2)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.content[0].text.value == "broken \ufffd text"  # type: ignore[union-attr]
