"""file_search inside runs: the model searches, the reply's markers become file_citation
annotations, the step records results, and the trace shows what retrieval did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from openai import AssistantEventHandler, OpenAI
from sqlalchemy import create_engine, text

from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import ServerProcess
from tests.test_vector_stores import SHIPPING, WARRANTY, expire, upload, wait_for

CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def search_call(*queries: str) -> dict[str, Any]:
    return {"name": "file_search", "arguments": json.dumps({"queries": list(queries)})}


def docs_store(client: OpenAI, tmp_path: Path) -> tuple[Any, Any, Any]:
    warranty = upload(client, tmp_path, "warranty.md", WARRANTY)
    shipping = upload(client, tmp_path, "shipping.md", SHIPPING)
    store = client.vector_stores.create(name="Docs", file_ids=[warranty.id, shipping.id])
    wait_for(client, store.id, warranty.id, shipping.id)
    return store, warranty, shipping


def search_steps(client: OpenAI, thread_id: str, run_id: str, include: bool = False) -> list[Any]:
    steps = client.beta.threads.runs.steps.list(
        thread_id=thread_id, run_id=run_id, order="asc", include=[CONTENT] if include else []
    )
    return [
        call
        for step in steps.data
        if step.step_details.type == "tool_calls"
        for call in step.step_details.tool_calls
        if call.type == "file_search"
    ]


def test_a_file_search_run_answers_with_citations_to_the_right_file(
    client: OpenAI, http: httpx.Client, model: ScriptedModel, tmp_path: Path
) -> None:
    store, warranty, _ = docs_store(client, tmp_path)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        name="Documentation Assistant",
        instructions="Answer from the manuals.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    reply = "The kettle has a three-year warranty 【0:0†warranty.md】."
    model.tool_calls([search_call("kettle warranty length", "how long is the guarantee")]).text(
        reply
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "How long is the warranty?"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error

    # The model was offered file_search and read numbered sources with their markers.
    first, second = model.requests[-2], model.requests[-1]
    assert any(t["function"]["name"] == "file_search" for t in first["tools"])
    tool_message = next(m for m in second["messages"] if m["role"] == "tool")
    assert "【0:0†warranty.md】" in tool_message["content"]
    assert "three years" in tool_message["content"]

    message = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    text = message.content[0].text
    assert text.value == reply
    (citation,) = text.annotations
    assert citation.type == "file_citation"
    assert citation.file_citation.file_id == warranty.id
    assert text.value[citation.start_index : citation.end_index] == "【0:0†warranty.md】"
    assert citation.text == "【0:0†warranty.md】"
    assert "three years" in citation.file_citation.model_extra["quote"]

    (call,) = search_steps(client, thread.id, run.id)
    assert call.file_search.ranking_options.ranker == "default_2024_08_21"
    assert call.file_search.ranking_options.score_threshold == 0.0
    assert call.file_search.results[0].file_id == warranty.id
    assert call.file_search.results[0].file_name == "warranty.md"
    assert all(r.content is None for r in call.file_search.results)
    (with_content,) = search_steps(client, thread.id, run.id, include=True)
    assert "three years" in with_content.file_search.results[0].content[0].text

    # The trace: queries, every candidate with its three scores, and what was chosen.
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    step_id = next(s.id for s in steps.data if s.step_details.type == "tool_calls")
    r = http.get(f"/threads/{thread.id}/runs/{run.id}/steps/{step_id}/file_search_trace")
    assert r.status_code == 200, r.text
    (trace,) = r.json()["data"]
    assert trace["id"] == call.id and trace["vector_store_ids"] == [store.id]
    assert trace["queries"] == ["kettle warranty length", "how long is the guarantee"]
    candidates = trace["candidates"]
    assert candidates and candidates[0]["file_id"] == warranty.id and candidates[0]["selected"]
    for c in candidates:
        for key in ("vector_score", "keyword_score", "score"):
            assert 0.0 <= c[key] <= 1.0
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)


def test_a_reply_that_cites_nothing_is_attributed_to_its_sources(
    client: OpenAI, model: ScriptedModel, tmp_path: Path
) -> None:
    store, warranty, _ = docs_store(client, tmp_path)
    assistant = client.beta.assistants.create(
        model="small-local-model",
        tools=[{"type": "file_search", "file_search": {"max_num_results": 1}}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    model.tool_calls([search_call("warranty years")]).text("Three years.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Warranty?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    text = client.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text
    assert text.value == "Three years. 【0:0†warranty.md】"
    (citation,) = text.annotations
    assert citation.file_citation.file_id == warranty.id
    assert text.value[citation.start_index : citation.end_index] == citation.text
    (call,) = search_steps(client, thread.id, run.id)
    assert len(call.file_search.results) == 1


def test_message_attachments_go_into_the_threads_own_vector_store(
    client: OpenAI, model: ScriptedModel, tmp_path: Path
) -> None:
    shipping = upload(client, tmp_path, "shipping.md", SHIPPING)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "How fast is express delivery?",
                "attachments": [{"file_id": shipping.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    (store_id,) = thread.tool_resources.file_search.vector_store_ids
    store = client.vector_stores.retrieve(store_id)
    assert store.expires_after.days == 7 and store.file_counts.total == 1
    model.tool_calls([search_call("express delivery time")]).text("Next day 【0:0†shipping.md】.")
    # The run waits for the attachment to be ingested before it searches.
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    (call,) = search_steps(client, thread.id, run.id)
    assert call.file_search.results[0].file_id == shipping.id

    # A later message's attachment joins the same store.
    more = upload(client, tmp_path, "warranty.md", WARRANTY)
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="And the warranty?",
        attachments=[{"file_id": more.id, "tools": [{"type": "file_search"}]}],
    )
    assert client.vector_stores.retrieve(store_id).file_counts.total == 2


def test_the_vector_stores_helper_makes_a_store_from_file_ids(
    client: OpenAI, tmp_path: Path
) -> None:
    warranty = upload(client, tmp_path, "warranty.md", WARRANTY)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [warranty.id]}]}},
    )
    (store_id,) = assistant.tool_resources.file_search.vector_store_ids
    (vsf,) = wait_for(client, store_id, warranty.id)
    assert vsf.status == "completed"


def test_streamed_file_search_runs_deliver_results_and_annotations(
    client: OpenAI, model: ScriptedModel, tmp_path: Path
) -> None:
    store, warranty, _ = docs_store(client, tmp_path)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    model.tool_calls([search_call("warranty")]).text("Three years 【0:0†warranty.md】.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Warranty?"}])

    class Handler(AssistantEventHandler):
        def __init__(self) -> None:
            super().__init__()
            self.tool_types: list[str] = []

        def on_tool_call_created(self, tool_call: Any) -> None:
            self.tool_types.append(tool_call.type)

    handler = Handler()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert handler.tool_types == ["file_search"]
    final = handler.get_final_messages()[-1]
    (citation,) = final.content[0].text.annotations
    assert citation.file_citation.file_id == warranty.id


def file_search_attachment(file_id: str) -> dict[str, Any]:
    return {"file_id": file_id, "tools": [{"type": "file_search"}]}


def thread_store(client: OpenAI, thread_id: str) -> str:
    (store_id,) = client.beta.threads.retrieve(
        thread_id
    ).tool_resources.file_search.vector_store_ids
    return store_id


def store_files(client: OpenAI, store_id: str) -> list[str]:
    return [f.id for f in client.vector_stores.files.list(vector_store_id=store_id).data]


def test_attachments_never_go_into_an_expired_or_foreign_thread_store(
    client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    shipping = upload(client, tmp_path, "shipping.md", SHIPPING)
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Shipping?",
                "attachments": [file_search_attachment(shipping.id)],
            }
        ]
    )
    first = thread_store(client, thread.id)
    wait_for(client, first, shipping.id)

    # Seven days without use later, the thread's store has expired: a new attachment gets
    # a new store, which replaces the dead one on the thread.
    expire(server, first)
    warranty = upload(client, tmp_path, "warranty.md", WARRANTY)
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="And the warranty?",
        attachments=[file_search_attachment(warranty.id)],  # type: ignore[list-item]
    )
    second = thread_store(client, thread.id)
    assert second != first
    assert store_files(client, first) == [shipping.id]
    assert store_files(client, second) == [warranty.id]
    store = client.vector_stores.retrieve(second)
    assert store.status != "expired" and store.expires_after.days == 7
    (vsf,) = wait_for(client, second, warranty.id)
    assert vsf.status == "completed", vsf.last_error

    # A store that is not this project's is never filled either.
    engine = create_engine(server.database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE vector_stores SET project = 'beta' WHERE id = :id"), {"id": second}
        )
    engine.dispose()
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="And shipping again?",
        attachments=[file_search_attachment(shipping.id)],  # type: ignore[list-item]
    )
    third = thread_store(client, thread.id)
    assert third not in (first, second)
    assert store_files(client, third) == [shipping.id]


def test_attachments_of_a_runs_additional_messages_are_indexed_and_searched(
    client: OpenAI, model: ScriptedModel, tmp_path: Path
) -> None:
    shipping = upload(client, tmp_path, "shipping.md", SHIPPING)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create()
    model.tool_calls([search_call("express delivery time")]).text("Next day 【0:0†shipping.md】.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_messages=[
            {
                "role": "user",
                "content": "How fast is express delivery?",
                "attachments": [file_search_attachment(shipping.id)],  # type: ignore[list-item]
            }
        ],
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    store_id = thread_store(client, thread.id)
    assert store_files(client, store_id) == [shipping.id]
    (call,) = search_steps(client, thread.id, run.id)
    assert call.file_search.results and call.file_search.results[0].file_id == shipping.id
    text_value = client.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text
    assert text_value.annotations[0].file_citation.file_id == shipping.id

    # The same for the messages of a thread made together with its run.
    warranty = upload(client, tmp_path, "warranty.md", WARRANTY)
    model.tool_calls([search_call("warranty length")]).text("Three years.")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {
                    "role": "user",
                    "content": "How long is the warranty?",
                    "attachments": [file_search_attachment(warranty.id)],  # type: ignore[list-item]
                }
            ]
        },
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    (call,) = search_steps(client, run.thread_id, run.id)
    assert call.file_search.results and call.file_search.results[0].file_id == warranty.id


def test_an_expired_store_is_not_searched_by_a_run(
    client: OpenAI, http: httpx.Client, model: ScriptedModel, server: ServerProcess, tmp_path: Path
) -> None:
    warranty = upload(client, tmp_path, "warranty.md", WARRANTY)
    shipping = upload(client, tmp_path, "shipping.md", SHIPPING)
    old = client.vector_stores.create(name="Old", file_ids=[warranty.id])
    live = client.vector_stores.create(name="Live", file_ids=[shipping.id])
    wait_for(client, old.id, warranty.id)
    wait_for(client, live.id, shipping.id)
    expire(server, old.id)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [old.id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "How long is the kettle warranty?"}],
        tool_resources={"file_search": {"vector_store_ids": [live.id]}},
    )
    model.tool_calls([search_call("kettle warranty three years")]).text("I could not tell.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    (call,) = search_steps(client, thread.id, run.id)
    assert call.file_search.results  # the live store still answers
    assert all(r.file_id == shipping.id for r in call.file_search.results)
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    step_id = next(s.id for s in steps.data if s.step_details.type == "tool_calls")
    r = http.get(f"/threads/{thread.id}/runs/{run.id}/steps/{step_id}/file_search_trace")
    (trace,) = r.json()["data"]
    assert trace["vector_store_ids"] == [live.id]
    assert all(c["file_id"] != warranty.id for c in trace["candidates"])


def test_a_provider_that_reuses_tool_call_ids_keeps_every_runs_trace(
    client: OpenAI, http: httpx.Client, model: ScriptedModel, tmp_path: Path
) -> None:
    """Many local models number their calls ("call_0") afresh in every response."""
    store, warranty, _ = docs_store(client, tmp_path)
    assistant = client.beta.assistants.create(
        model="local-model",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    runs = []
    for question in ("How long is the warranty?", "Is the glass jug covered?"):
        model.tool_calls([{**search_call(question), "id": "call_0"}]).text(
            "Three years 【0:0†warranty.md】."
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
        )
        assert run.status == "completed", run.last_error
        runs.append((thread.id, run.id, question))
    for thread_id, run_id, question in runs:
        (call,) = search_steps(client, thread_id, run_id)
        assert call.id == "call_0" and call.file_search.results[0].file_id == warranty.id
        steps = client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run_id)
        step_id = next(s.id for s in steps.data if s.step_details.type == "tool_calls")
        r = http.get(f"/threads/{thread_id}/runs/{run_id}/steps/{step_id}/file_search_trace")
        assert r.status_code == 200, r.text
        (trace,) = r.json()["data"]
        assert trace["id"] == "call_0" and trace["run_id"] == run_id
        assert trace["step_id"] == step_id and trace["queries"] == [question]


def test_tool_choice_file_search_forces_exactly_that_tool(
    client: OpenAI, model: ScriptedModel
) -> None:
    """With a function tool beside it, "required" would let the model call the function
    (and the run stop in requires_action): the model is told to call file_search."""
    lookup = {"type": "function", "function": {"name": "lookup"}}
    assistant = client.beta.assistants.create(
        model="gpt-4o", tools=[lookup, {"type": "file_search"}]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Warranty?"}])
    model.tool_calls([search_call("warranty")]).text("Nothing found.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "file_search"},
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    forced = {"type": "function", "function": {"name": "file_search"}}
    assert model.requests[0]["tool_choice"] == forced
    assert [c.type for c in search_steps(client, thread.id, run.id)] == ["file_search"]


def test_results_are_fitted_to_a_share_of_the_models_context(
    client: OpenAI, model: ScriptedModel, tmp_path: Path
) -> None:
    """A model litellm does not know gets ASSISTD_MODEL_CONTEXT_TOKENS (8192) of context,
    a quarter of it for results: of six 700-token passages that all match, two fit (the
    step records those two), where 20 results would have been asked for."""
    passage = " ".join(f"The kettle part {n} is covered by the warranty." for n in range(70))
    files = [upload(client, tmp_path, f"part{i}.txt", passage) for i in range(6)]
    store = client.vector_stores.create(
        file_ids=[f.id for f in files],
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 0},
        },
    )
    wait_for(client, store.id, *[f.id for f in files])
    assistant = client.beta.assistants.create(
        model="tiny-local-model",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    model.tool_calls([search_call("which kettle parts are covered?")]).text("All of them.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Covered?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    (call,) = search_steps(client, thread.id, run.id)
    assert len(call.file_search.results) == 2
    tool_message = next(m for m in model.requests[-1]["messages"] if m["role"] == "tool")
    assert tool_message["content"].count("†part") == 2
    assert len(tool_message["content"]) < 2048 * 5  # the budget, in characters at most
