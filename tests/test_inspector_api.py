"""The inspector's JSON endpoints over HTTP: a run's model calls (the request exactly as
the model received it, the raw answer, cost) and timeline, a thread's traces with
citations resolved to chunks, the thread list, the search with split scores; project
isolation; everything recorded goes with its thread."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from tests.conftest import KEY_BETA
from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import ServerProcess
from tests.test_file_search import docs_store, search_call

ENDED = ("completed", "failed", "cancelled", "expired", "incomplete")


@pytest.fixture(scope="module")
def beta_http(server: ServerProcess) -> Iterator[httpx.Client]:
    """Raw HTTP with the second project's key."""
    with httpx.Client(
        base_url=f"{server.base_url}/v1",
        headers={"Authorization": f"Bearer {KEY_BETA}"},
        timeout=30,
    ) as c:
        yield c


def get(http: httpx.Client, path: str, **params: Any) -> Any:
    r = http.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def settled(http: httpx.Client, thread_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's timeline once all its records are in: they are written beside the run,
    in order, and the change to its final status comes last."""
    deadline = time.monotonic() + 10
    while True:
        events = get(http, f"/threads/{thread_id}/runs/{run_id}/timeline")["events"]
        if any(e["type"] == "status" and e["detail"]["to"] in ENDED for e in events):
            return events
        assert time.monotonic() < deadline, events
        time.sleep(0.05)


def without_nulls(value: Any) -> Any:
    """The record holds the request as handed to litellm, which drops null fields
    (an assistant message's `content: null` beside its tool calls) before sending."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def db_count(server: ServerProcess, sql: str, **params: Any) -> int:
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def test_model_calls_hold_the_request_as_the_model_received_it_and_the_raw_answer(
    client: OpenAI, http: httpx.Client, model: ScriptedModel, assistant: Any, thread: Any
) -> None:
    model.tool_calls([{"name": "get_weather", "arguments": '{"city": "Paris"}'}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice="required",
        response_format={"type": "json_object"},
        poll_interval_ms=50,
    )
    assert run.status == "requires_action"
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    model.text('{"weather": "sunny"}')
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny, 24 C"}],
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    received = model.requests[-2:]
    events = settled(http, thread.id, run.id)

    page = get(http, f"/threads/{thread.id}/runs/{run.id}/model_calls")
    first, second = page["data"]
    assert page["object"] == "list" and page["first_id"] == first["id"]
    for record, sent in zip((first, second), received, strict=True):
        assert record["object"] == "thread.run.model_call" and record["run_id"] == run.id
        assert record["model"] == "gpt-4o" and record["request"]["model"] == "gpt-4o"
        assert record["route"].startswith("MODEL_BASE_URL: ")
        for key in ("messages", "tools", "tool_choice", "response_format"):
            assert without_nulls(record["request"][key]) == sent[key], key
        assert record["latency"] > 0 and record["ended_at"] >= record["started_at"]
        assert record["cost"] > 0  # gpt-4o is in litellm's local price list
        assert record["truncated"] is False and record["error"] is None
    assert first["request"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert first["request"]["tool_choice"] == "required"
    assert first["response"] == {
        "text": "",
        "tool_calls": [{"id": call.id, "name": "get_weather", "arguments": '{"city": "Paris"}'}],
        "finish_reason": "tool_calls",
    }
    assert second["request"]["messages"][-1]["content"] == "sunny, 24 C"
    assert second["response"]["text"] == '{"weather": "sunny"}'
    assert second["response"]["finish_reason"] == "stop"
    total = {k: first["usage"][k] + second["usage"][k] for k in first["usage"]}
    assert total == run.usage.model_dump()

    # The timeline: every status change the engine made, the calls, the steps, in order.
    timeline = get(http, f"/threads/{thread.id}/runs/{run.id}/timeline")
    assert timeline["object"] == "thread.run.timeline" and timeline["status"] == "completed"
    assert timeline["events"] == events
    assert events[0]["type"] == "created"
    moves = [(e["detail"]["from"], e["detail"]["to"]) for e in events if e["type"] == "status"]
    assert moves == [
        ("queued", "in_progress"),
        ("in_progress", "requires_action"),
        ("queued", "in_progress"),
        ("in_progress", "completed"),
    ]
    calls = [e for e in events if e["type"] == "model_call"]
    assert [c["id"] for c in calls] == [first["id"], second["id"]]
    assert calls[0]["detail"]["finish_reason"] == "tool_calls" and calls[0]["duration"] > 0
    assert [e["detail"]["type"] for e in events if e["type"] == "step"] == [
        "tool_calls",
        "message_creation",
    ]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


def test_an_unpriced_model_costs_nothing_and_a_huge_answer_is_cut_in_the_record(
    client: OpenAI, http: httpx.Client, model: ScriptedModel
) -> None:
    """The record's cap (256 KiB by default) is crossed by a 400 KB answer: the record
    keeps the start with a marker, the message itself keeps everything."""
    assistant = client.beta.assistants.create(model="small-local-model")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Talk."}])
    words = "lorem " * 70_000
    model.text(words, chunks=20)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    message = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    assert message.content[0].text.value == words
    settled(http, thread.id, run.id)
    (record,) = get(http, f"/threads/{thread.id}/runs/{run.id}/model_calls")["data"]
    assert record["cost"] == 0  # not in litellm's price list: a local model
    assert record["truncated"] is True
    answer = record["response"]["text"]
    assert answer.startswith("lorem lorem") and "more characters cut by assistd" in answer
    assert len(json.dumps(record)) <= 256 * 1024


def test_traces_resolve_citations_to_chunks_and_search_trace_splits_the_scores(
    client: OpenAI, http: httpx.Client, model: ScriptedModel, tmp_path: Path
) -> None:
    store, warranty, _ = docs_store(client, tmp_path)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Warranty?"}])
    model.tool_calls([search_call("kettle warranty")]).text("Three years 【0:0†warranty.md】.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error

    traces = get(http, f"/threads/{thread.id}/traces")
    assert traces["object"] == "thread.traces" and traces["code_interpreter"] == []
    (trace,) = traces["file_search"]
    best = trace["candidates"][0]
    assert best["file_id"] == warranty.id and best["selected"] and best["cited"]
    assert not any(c["cited"] for c in trace["candidates"][1:])
    (citation,) = traces["citations"]
    assert citation["text"] == "【0:0†warranty.md】" and citation["run_id"] == run.id
    assert citation["chunk_id"] == best["chunk_id"] and citation["vector_store_id"] == store.id
    assert (citation["trace_id"], citation["step_id"]) == (trace["id"], trace["step_id"])
    chunks = get(http, f"/vector_stores/{store.id}/files/{warranty.id}/chunks")["data"]
    assert citation["chunk_id"] in [c["id"] for c in chunks]
    events = settled(http, thread.id, run.id)
    assert [e["detail"]["tool"] for e in events if e["type"] == "tools"] == ["file_search"]

    # The search box's endpoint: the same search as /search, with its split scores.
    body = {"query": "how long is the guarantee", "max_num_results": 2}
    plain = http.post(f"/vector_stores/{store.id}/search", json=body).json()
    r = http.post(f"/vector_stores/{store.id}/search_trace", json=body)
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["object"] == "vector_store.search_trace"
    assert [d["file_id"] for d in found["data"]] == [d["file_id"] for d in plain["data"]]
    # A plain-words query: 0.8 on meaning, 0.2 on keywords (retrieval/fusion.py).
    assert found["ranking_options"]["vector_weights"] == [0.8]
    for d in found["data"]:
        fused = 0.8 * d["vector_score"] + 0.2 * d["keyword_score"]
        assert abs(d["score"] - fused) < 1e-5 and d["chunk_id"].startswith(d["file_id"] + ":")
    assert [c["selected"] for c in found["candidates"]][:2] == [True, True]


def test_another_projects_key_sees_none_of_it_and_gets_404(
    server: ServerProcess,
    client: OpenAI,
    http: httpx.Client,
    beta_http: httpx.Client,
    model: ScriptedModel,
) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    model.text("Hello.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    store = client.vector_stores.create(name="alpha's")
    # The same 404 as the API's own run and thread lookups give another project.
    for path, kind, object_id in (
        (f"/threads/{thread.id}/runs/{run.id}/model_calls", "run", run.id),
        (f"/threads/{thread.id}/runs/{run.id}/timeline", "run", run.id),
        (f"/threads/{thread.id}/traces", "thread", thread.id),
    ):
        assert http.get(path).status_code == 200
        r = beta_http.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["message"] == f"No {kind} found with id '{object_id}'."
    r = beta_http.post(f"/vector_stores/{store.id}/search_trace", json={"query": "x"})
    assert r.status_code == 404
    listed = get(beta_http, "/threads", q=thread.id)
    assert listed["data"] == []
    unknown = http.get(f"/threads/{thread.id}/runs/run_nope/model_calls")
    assert unknown.status_code == 404
    r = httpx.get(f"{server.base_url}/v1/threads/{thread.id}/traces", timeout=30)
    assert r.status_code == 401  # no key: the same authentication as the rest of the API


def test_thread_list_newest_first_searchable_by_id_and_metadata(
    client: OpenAI, http: httpx.Client
) -> None:
    tag = uuid.uuid4().hex[:10]
    made = [
        client.beta.threads.create(metadata={"customer": f"zeta-{tag}", "n": str(i)})
        for i in range(3)
    ]
    accented = client.beta.threads.create(metadata={"city": f"Besançon-{tag}"})
    page = get(http, "/threads", q=f"zeta-{tag}")
    assert [t["id"] for t in page["data"]] == [t.id for t in reversed(made)]
    assert get(http, "/threads", q=made[1].id)["data"][0]["id"] == made[1].id
    assert [t["id"] for t in get(http, "/threads", q=f"Besançon-{tag}")["data"]] == [accented.id]
    first = get(http, "/threads", q=tag, limit=2)
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = get(http, "/threads", q=tag, limit=2, after=first["last_id"])
    assert [t["id"] for t in first["data"] + rest["data"]] == [
        accented.id,
        made[2].id,
        made[1].id,
        made[0].id,
    ]
    assert get(http, "/threads", q="100%_no_such")["data"] == []  # LIKE wildcards are literal


def test_everything_recorded_goes_with_its_thread(
    server: ServerProcess,
    client: OpenAI,
    http: httpx.Client,
    model: ScriptedModel,
    tmp_path: Path,
) -> None:
    store, _, _ = docs_store(client, tmp_path)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Warranty?"}])
    model.tool_calls([search_call("warranty")]).text("Three years.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    settled(http, thread.id, run.id)
    records = "SELECT COUNT(*) FROM run_records WHERE thread_id = :t"
    traces = "SELECT COUNT(*) FROM retrieval_traces WHERE run_id = :r"
    assert db_count(server, records, t=thread.id) >= 4  # two calls, two status changes, tools
    assert db_count(server, traces, r=run.id) == 1

    client.beta.threads.delete(thread.id)
    assert db_count(server, records, t=thread.id) == 0
    assert db_count(server, traces, r=run.id) == 0
    r = http.get(f"/threads/{thread.id}/runs/{run.id}/model_calls")
    assert r.status_code == 404


def test_the_openapi_document_describes_the_extensions(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    paths = doc["paths"]
    assert "get" in paths["/v1/threads/{thread_id}/runs/{run_id}/model_calls"]
    assert "get" in paths["/v1/threads/{thread_id}/runs/{run_id}/timeline"]
    assert "get" in paths["/v1/threads/{thread_id}/traces"]
    assert "post" in paths["/v1/vector_stores/{vector_store_id}/search_trace"]
    assert "get" in paths["/v1/threads"]
    assert "ModelCallObject" in doc["components"]["schemas"]
    assert not any(p.startswith("/inspector") for p in paths)
