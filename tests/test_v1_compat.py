"""Assistants v1 code, as users wrote it in early 2024, against the v2 server.

Runs only under openai==1.20.x, the last SDK that speaks v1 (`OpenAI-Beta: assistants=v1`):
`scripts/test-v1` gives it its own venv while the server runs from `.venv`. Every JSON
response the v1 client receives is validated against that SDK's own v1 types, strictly
and with no fields beyond them (the SDK itself parses leniently).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import KEY_ALPHA
from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import ServerProcess

if not openai.__version__.startswith("1.20."):
    pytest.skip(
        f"needs openai==1.20.x, the last SDK with Assistants v1 (installed: {openai.__version__});"
        " scripts/test-v1 runs this file in its own venv",
        allow_module_level=True,
    )

WARRANTY = (
    "# Warranty\n\nEvery Zephyr kettle carries a warranty of three years from the date of "
    "purchase. The warranty covers the heating element and the thermostat.\n"
)
SHIPPING = (
    "# Shipping\n\nOrders leave our warehouse within two business days. Express delivery "
    "arrives the next day for an extra fee of 12 euros.\n"
)
REPLY = "The kettle has a three-year warranty 【0:0†warranty.md】."


def v1_types() -> dict[str, Any]:
    """object -> the v1 SDK class describing it (imported here: only 1.20 has them)."""
    from openai.types.beta import Assistant, AssistantDeleted, Thread
    from openai.types.beta.assistants import AssistantFile, FileDeleteResponse
    from openai.types.beta.threads import Message, Run
    from openai.types.beta.threads.messages import MessageFile
    from openai.types.beta.threads.runs import RunStep

    classes = (Assistant, AssistantDeleted, Thread, AssistantFile, FileDeleteResponse)
    classes += (Message, Run, MessageFile, RunStep)
    return {cls.model_fields["object"].annotation.__args__[0]: cls for cls in classes}


def check_v1_shape(obj: dict[str, Any]) -> None:
    if obj.get("object") == "list":
        for item in obj["data"]:
            check_v1_shape(item)
        return
    cls = v1_types().get(obj.get("object"))
    if cls is None:
        return
    extra = set(obj) - set(cls.model_fields)
    assert not extra, f"{obj['object']} has fields v1 did not: {sorted(extra)}"
    cls.model_validate(obj)


def v1_contract(response: httpx.Response) -> None:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return
    response.read()
    body = response.json()
    if response.is_success:
        check_v1_shape(body)
    else:
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[OpenAI]:
    http = httpx.Client(event_hooks={"response": [v1_contract]}, timeout=60)
    yield OpenAI(
        base_url=f"{server.base_url}/v1", api_key=KEY_ALPHA, max_retries=0, http_client=http
    )
    http.close()


@pytest.fixture(scope="module")
def v2(server: ServerProcess) -> Iterator[httpx.Client]:
    """The same objects, asked for by a v2 client."""
    headers = {"Authorization": f"Bearer {KEY_ALPHA}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=f"{server.base_url}/v1", headers=headers, timeout=30) as c:
        yield c


def upload(client: OpenAI, name: str, text: str) -> Any:
    return client.files.create(file=(name, text.encode()), purpose="assistants")


def search_call(*queries: str) -> dict[str, Any]:
    return {"name": "file_search", "arguments": json.dumps({"queries": list(queries)})}


def wait_for(client: OpenAI, thread_id: str, run_id: str) -> Any:
    """The seed's own polling loop."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status not in ("queued", "in_progress"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def store_files(v2: httpx.Client, store_id: str) -> set[str]:
    r = v2.get(f"/vector_stores/{store_id}/files")
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["data"]}


def assistant_store(v2: httpx.Client, assistant_id: str) -> str:
    resources = v2.get(f"/assistants/{assistant_id}").json()["tool_resources"]
    (store_id,) = resources["file_search"]["vector_store_ids"]
    return store_id


def test_a_v1_retrieval_assistant_answers_with_citations_from_its_files(
    client: OpenAI, v2: httpx.Client, model: ScriptedModel
) -> None:
    warranty = upload(client, "warranty.md", WARRANTY)
    shipping = upload(client, "shipping.md", SHIPPING)
    assistant = client.beta.assistants.create(
        model="gpt-4-turbo",
        name="Kettle support",
        instructions="Answer from the manuals.",
        tools=[{"type": "retrieval"}],
        file_ids=[warranty.id],
    )
    assert assistant.file_ids == [warranty.id]
    assert [t.type for t in assistant.tools] == ["retrieval"]
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "How long is the warranty?", "file_ids": [shipping.id]}
        ]
    )
    model.tool_calls([search_call("kettle warranty length")]).text(REPLY)
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    run = wait_for(client, thread.id, run.id)

    assert run.status == "completed", run.last_error
    assert run.file_ids == [warranty.id]
    assert [t.type for t in run.tools] == ["retrieval"]
    offered = [t["function"]["name"] for t in model.requests[0]["tools"]]
    assert "file_search" in offered
    reply, question = client.beta.threads.messages.list(thread_id=thread.id).data
    assert question.file_ids == [shipping.id]
    assert reply.file_ids == []
    text = reply.content[0].text
    assert text.value == REPLY
    (citation,) = text.annotations
    assert citation.type == "file_citation"
    assert citation.file_citation.file_id == warranty.id
    assert "three years" in citation.file_citation.quote
    assert text.value[citation.start_index : citation.end_index] == "【0:0†warranty.md】"

    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    (call,) = steps[0].step_details.tool_calls
    assert call.type == "retrieval" and call.retrieval == {}

    # The same run step asked for by a v2 client is still a file_search call.
    r = v2.get(f"/threads/{thread.id}/runs/{run.id}/steps/{steps[0].id}")
    assert r.json()["step_details"]["tool_calls"][0]["type"] == "file_search"


def test_a_streamed_v1_run_reports_retrieval_calls_and_v1_runs(
    client: OpenAI, model: ScriptedModel
) -> None:
    warranty = upload(client, "warranty.md", WARRANTY)
    assistant = client.beta.assistants.create(
        model="gpt-4-turbo", tools=[{"type": "retrieval"}], file_ids=[warranty.id]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Warranty?"}])
    model.tool_calls([search_call("warranty")]).text(REPLY)

    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, tools=[{"type": "retrieval"}]
    ) as stream:
        events = list(stream)
        messages = stream.get_final_messages()

    completed = next(e.data for e in events if e.event == "thread.run.completed")
    assert completed.file_ids == [warranty.id]
    assert [t.type for t in completed.tools] == ["retrieval"]
    deltas = [
        call.type
        for e in events
        if e.event == "thread.run.step.delta"
        for call in e.data.delta.step_details.tool_calls or []
    ]
    assert deltas and set(deltas) == {"retrieval"}
    calls = [
        call
        for e in events
        if e.event == "thread.run.step.completed" and e.data.type == "tool_calls"
        for call in e.data.step_details.tool_calls
    ]
    assert [(c.type, c.retrieval) for c in calls] == [("retrieval", {})]
    (citation,) = messages[-1].content[0].text.annotations
    assert citation.file_citation.file_id == warranty.id
    assert "three years" in citation.file_citation.quote


def test_assistant_files_are_added_listed_and_removed_through_the_v1_endpoints(
    client: OpenAI, v2: httpx.Client
) -> None:
    first = upload(client, "warranty.md", WARRANTY)
    second = upload(client, "shipping.md", SHIPPING)
    assistant = client.beta.assistants.create(model="gpt-4-turbo", tools=[{"type": "retrieval"}])
    assert assistant.file_ids == []

    added = client.beta.assistants.files.create(assistant.id, file_id=first.id)
    assert (added.id, added.object, added.assistant_id) == (
        first.id,
        "assistant.file",
        assistant.id,
    )
    assert added.created_at == first.created_at
    client.beta.assistants.files.create(assistant.id, file_id=second.id)
    again = client.beta.assistants.files.create(assistant.id, file_id=second.id)
    assert again.id == second.id

    assert client.beta.assistants.retrieve(assistant.id).file_ids == [first.id, second.id]
    listed = client.beta.assistants.files.list(assistant.id)
    assert [f.id for f in listed.data] == [second.id, first.id]
    oldest = client.beta.assistants.files.list(assistant.id, order="asc", limit=1)
    assert [f.id for f in oldest.data] == [first.id] and oldest.has_more
    rest = client.beta.assistants.files.list(assistant.id, order="asc", after=first.id)
    assert [f.id for f in rest.data] == [second.id] and not rest.has_more
    fetched = client.beta.assistants.files.retrieve(second.id, assistant_id=assistant.id)
    assert fetched.assistant_id == assistant.id

    # Retrieval reads the assistant's implicit vector store, which follows the file list.
    store_id = assistant_store(v2, assistant.id)
    assert store_files(v2, store_id) == {first.id, second.id}
    deleted = client.beta.assistants.files.delete(first.id, assistant_id=assistant.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        first.id,
        True,
        "assistant.file.deleted",
    )
    assert client.beta.assistants.retrieve(assistant.id).file_ids == [second.id]
    assert store_files(v2, store_id) == {second.id}
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.files.retrieve(first.id, assistant_id=assistant.id)

    updated = client.beta.assistants.update(assistant.id, file_ids=[first.id])
    assert updated.file_ids == [first.id]
    assert assistant_store(v2, assistant.id) == store_id
    assert store_files(v2, store_id) == {first.id}

    assert client.beta.assistants.delete(assistant.id).deleted
    assert v2.get(f"/vector_stores/{store_id}").status_code == 404


def test_turning_retrieval_on_later_indexes_the_files_already_attached(
    client: OpenAI, v2: httpx.Client
) -> None:
    doc = upload(client, "warranty.md", WARRANTY)
    assistant = client.beta.assistants.create(
        model="gpt-4-turbo", tools=[{"type": "code_interpreter"}], file_ids=[doc.id]
    )
    resources = v2.get(f"/assistants/{assistant.id}").json()["tool_resources"]
    assert resources == {"code_interpreter": {"file_ids": [doc.id]}}

    updated = client.beta.assistants.update(
        assistant.id, tools=[{"type": "code_interpreter"}, {"type": "retrieval"}]
    )
    assert [t.type for t in updated.tools] == ["code_interpreter", "retrieval"]
    assert updated.file_ids == [doc.id]
    assert store_files(v2, assistant_store(v2, assistant.id)) == {doc.id}


def test_message_files_are_listed_through_the_v1_endpoints(client: OpenAI) -> None:
    first = upload(client, "warranty.md", WARRANTY)
    second = upload(client, "shipping.md", SHIPPING)
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="Both manuals.", file_ids=[first.id, second.id]
    )
    assert message.file_ids == [first.id, second.id]

    listed = client.beta.threads.messages.files.list(message.id, thread_id=thread.id)
    assert [f.id for f in listed.data] == [second.id, first.id]
    assert {f.message_id for f in listed.data} == {message.id}
    assert {f.created_at for f in listed.data} == {message.created_at}
    one = client.beta.threads.messages.files.retrieve(
        first.id, thread_id=thread.id, message_id=message.id
    )
    assert (one.id, one.object) == (first.id, "thread.message.file")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.files.retrieve(
            "file-unknown", thread_id=thread.id, message_id=message.id
        )


def test_v2_clients_see_the_same_objects_in_v2_shapes(client: OpenAI, v2: httpx.Client) -> None:
    doc = upload(client, "warranty.md", WARRANTY)
    assistant = client.beta.assistants.create(
        model="gpt-4-turbo", tools=[{"type": "retrieval"}], file_ids=[doc.id]
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "hi", "file_ids": [doc.id]}]
    )

    a = v2.get(f"/assistants/{assistant.id}").json()
    assert "file_ids" not in a
    assert a["tools"] == [{"type": "file_search"}]
    assert a["tool_resources"]["code_interpreter"] == {"file_ids": [doc.id]}
    (m,) = v2.get(f"/threads/{thread.id}/messages").json()["data"]
    assert "file_ids" not in m
    assert m["attachments"] == [
        {"file_id": doc.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}
    ]
    t = v2.get(f"/threads/{thread.id}").json()
    assert t["tool_resources"]["file_search"]["vector_store_ids"]  # the thread's own store
    # The v1-only endpoints exist only for v1 callers.
    r = v2.get(f"/assistants/{assistant.id}/files")
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("Invalid URL")


def test_v1_errors_use_openais_error_envelope_and_name_v1_fields(client: OpenAI) -> None:
    doc = upload(client, "warranty.md", WARRANTY)
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.assistants.retrieve("asst_missing")
    assert missing.value.body["message"] == "No assistant found with id 'asst_missing'."

    with pytest.raises(openai.BadRequestError) as bad_file:
        client.beta.assistants.create(model="gpt-4-turbo", file_ids=[doc.id, "file-missing"])
    assert bad_file.value.body["param"] == "file_ids[1]"

    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as bad_message:
        client.beta.threads.messages.create(
            thread.id, role="user", content="hi", file_ids=["file-missing"]
        )
    assert bad_message.value.body["param"] == "file_ids[0]"
    with pytest.raises(openai.BadRequestError) as in_thread:
        client.beta.threads.create(
            messages=[{"role": "user", "content": "hi", "file_ids": ["file-missing"]}]
        )
    assert in_thread.value.body["param"] == "messages[0].file_ids[0]"

    assistant = client.beta.assistants.create(model="gpt-4-turbo")
    with pytest.raises(openai.BadRequestError) as bad_attach:
        client.beta.assistants.files.create(assistant.id, file_id="file-missing")
    assert bad_attach.value.body["param"] == "file_id"
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.files.list("asst_missing")
    with pytest.raises(openai.BadRequestError) as bad_cursor:
        client.beta.assistants.files.list(assistant.id, after="file-nope")
    assert bad_cursor.value.body["param"] == "after"
    assert client.beta.assistants.retrieve(assistant.id).file_ids == []
