"""Runs through the official SDK with the scripted model: completion, function calling,
every run field reaching the model, limits, failures, cancel, and isolation."""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest
from openai import OpenAI

from tests.conftest import WEATHER_TOOL, walk


def test_create_and_poll_answers_and_records_usage(
    client: OpenAI, model, assistant, thread
) -> None:
    model.text(
        "Hi there, friend!", usage={"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed" and run.last_error is None
    assert run.id.startswith("run_") and run.object == "thread.run"
    assert (run.model, run.instructions) == ("gpt-4o", "Be brief.")
    assert [t.type for t in run.tools] == ["function"]
    assert run.started_at and run.completed_at and run.expires_at is None
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (
        11,
        4,
        15,
    )
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.role == "assistant" and reply.content[0].text.value == "Hi there, friend!"
    assert (reply.run_id, reply.assistant_id, reply.status) == (run.id, assistant.id, "completed")
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
    assert [(s.type, s.status) for s in steps] == [("message_creation", "completed")]
    assert steps[0].step_details.message_creation.message_id == reply.id
    assert steps[0].usage.total_tokens == 15
    sent = model.requests[0]
    assert sent["model"] == "gpt-4o" and sent["stream"] is True
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    by_run = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    assert [m.id for m in by_run] == [reply.id]


def test_poll_hint_header_is_small(client: OpenAI, model, assistant, thread) -> None:
    raw = client.beta.threads.runs.with_raw_response.create(
        thread_id=thread.id, assistant_id=assistant.id
    )
    assert int(raw.headers["openai-poll-after-ms"]) <= 100
    run = raw.parse()
    got = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
    assert int(got.headers["openai-poll-after-ms"]) <= 100
    client.beta.threads.runs.poll(run.id, thread_id=thread.id)


def test_function_calls_round_trip(client: OpenAI, model, assistant, thread) -> None:
    model.tool_calls(
        [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "Rome"}},
        ]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.expires_at and run.expires_at > time.time()
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    assert all(c.function.name == "get_weather" and c.id.startswith("call_") for c in calls)
    step = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data[0]
    assert (step.type, step.status) == ("tool_calls", "in_progress")
    assert [c.function.output for c in step.step_details.tool_calls] == [None, None]

    model.text("Sunny in Paris, warm in Rome.")
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[
            {"tool_call_id": calls[0].id, "output": "sunny"},
            {"tool_call_id": calls[1].id, "output": "warm"},
        ],
    )
    assert done.status == "completed" and done.required_action is None
    steps = client.beta.threads.runs.steps.list(
        run_id=run.id, thread_id=thread.id, order="asc"
    ).data
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    assert [c.function.output for c in steps[0].step_details.tool_calls] == ["sunny", "warm"]
    second = model.requests[1]["messages"]
    assert second[-3]["tool_calls"][1]["id"] == calls[1].id
    assert second[-2:] == [
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "warm"},
    ]
    assert (
        client.beta.threads.messages.list(thread_id=thread.id)
        .data[0]
        .content[0]
        .text.value.startswith("Sunny")
    )


def test_tool_outputs_must_match_the_calls(client: OpenAI, model, assistant, thread) -> None:
    model.tool_calls([{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    call_id = run.required_action.submit_tool_outputs.tool_calls[0].id
    for outputs in ([], [{"tool_call_id": "call_unknown", "output": "x"}]):
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.runs.submit_tool_outputs(
                run_id=run.id, thread_id=thread.id, tool_outputs=outputs
            )
        assert err.value.param == "tool_outputs"
    assert (
        client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"
    )
    model.text("ok")
    client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call_id, "output": "cold"}],
    )
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call_id, "output": "again"}],
        )
    assert err.value.code == "invalid_run_status"


def test_json_tool_call_in_text_becomes_a_tool_call(
    client: OpenAI, model, assistant, thread
) -> None:
    """Local models without native tool calling answer with the call as JSON text."""
    model.text_tool_call("get_weather", {"city": "Lima"}, wrap="fenced")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Lima"},
    )
    assert client.beta.threads.messages.list(thread_id=thread.id).data[0].role == "user"
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_json_text_naming_no_tool_stays_text(client: OpenAI, model, assistant, thread) -> None:
    model.text('{"answer": 42}')
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert (
        client.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text.value
        == '{"answer": 42}'
    )


def test_every_run_field_reaches_the_model(client: OpenAI, model, assistant, thread) -> None:
    other_tool = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        model="local-llama",
        instructions="Override.",
        additional_instructions="Also this.",
        additional_messages=[{"role": "user", "content": "extra question"}],
        tools=[WEATHER_TOOL, other_tool],
        temperature=0.2,
        top_p=0.5,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        parallel_tool_calls=False,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": schema, "strict": True},
        },
        max_completion_tokens=300,
        metadata={"trace": "t1"},
    )
    sent = model.requests[0]
    assert sent["model"] == "local-llama"
    assert sent["messages"][0] == {"role": "system", "content": "Override.\n\nAlso this."}
    assert sent["messages"][-1] == {"role": "user", "content": "extra question"}
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "lookup"]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.2, 0.5, 300)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["response_format"]["json_schema"]["schema"] == schema
    assert (run.model, run.instructions, run.temperature, run.top_p) == (
        "local-llama",
        "Override.",
        0.2,
        0.5,
    )
    assert run.tool_choice.function.name == "lookup" and run.parallel_tool_calls is False
    assert run.metadata == {"trace": "t1"} and run.max_completion_tokens == 300
    assert run.response_format.type == "json_schema"
    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"trace": "t2"})
    assert updated.metadata == {"trace": "t2"} and updated.status == run.status


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("none", "none"), ("required", "required"), ("auto", "auto")],
)
def test_tool_choice_strings(client: OpenAI, model, assistant, thread, choice, expected) -> None:
    client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice=choice
    )
    assert model.requests[0]["tool_choice"] == expected


def test_unknown_tool_choice_is_400(client: OpenAI, assistant, thread) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert err.value.param == "tool_choice"
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="thread is not locked"
    )


def test_truncation_last_messages(client: OpenAI, model, assistant) -> None:
    t = client.beta.threads.create(
        messages=[{"role": "user", "content": f"m{i}"} for i in range(6)]
    )
    client.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
    )
    assert [m["content"] for m in model.requests[0]["messages"][1:]] == ["m4", "m5"]


def test_max_prompt_tokens_drops_oldest_history(client: OpenAI, model, assistant) -> None:
    long = "word " * 300
    t = client.beta.threads.create(
        messages=[
            {"role": "user", "content": f"old {long}"},
            {"role": "user", "content": "recent question"},
        ]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "completed" and run.max_prompt_tokens == 256
    assert [m["content"] for m in model.requests[0]["messages"][1:]] == ["recent question"]


def test_max_prompt_tokens_unmeetable_is_incomplete(client: OpenAI, model, assistant) -> None:
    t = client.beta.threads.create(messages=[{"role": "user", "content": "word " * 600}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=assistant.id, max_prompt_tokens=256
    )
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_prompt_tokens"
    assert model.call_count == 0


def test_max_completion_tokens_ends_incomplete(client: OpenAI, model, assistant, thread) -> None:
    model.text("This is cut", finish_reason="length")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    )
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_tokens"
    assert reply.content[0].text.value == "This is cut"
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="thread unlocked")


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "server_error"), (429, "rate_limit_exceeded"), (400, "invalid_prompt")],
)
def test_model_failures_end_the_run_failed(
    client: OpenAI, model, assistant, thread, status, code
) -> None:
    model.fail(status, "upstream says no")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed" and run.failed_at
    assert run.last_error.code == code and "upstream says no" in run.last_error.message
    assert model.call_count == 1  # no hidden retries
    assert client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data == []
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="thread unlocked")


def test_failure_mid_stream_keeps_partial_text(client: OpenAI, model, assistant, thread) -> None:
    model.fail_midstream(after_chunks=2, content="one two three four five", chunks=5)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed" and run.last_error.code == "server_error"
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.role == "assistant" and reply.status == "incomplete"
    assert reply.incomplete_details.reason == "run_failed" and reply.content[0].text.value
    step = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data[0]
    assert step.status == "failed" and step.last_error.code == "server_error" and step.failed_at


def test_one_active_run_per_thread(client: OpenAI, model, assistant, thread) -> None:
    model.stall(30)
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="wait")
    assert "while a run" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert err.value.code == "thread_locked"
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id).status == "cancelled"


def test_concurrent_run_starts_leave_exactly_one(client: OpenAI, model, assistant, thread) -> None:
    model.stall(30)
    results: list[object] = []

    def start() -> None:
        try:
            results.append(
                client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
            )
        except openai.BadRequestError as exc:
            results.append(exc)

    workers = [threading.Thread(target=start) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    started = [r for r in results if not isinstance(r, Exception)]
    assert len(started) == 1 and len(results) == 8
    client.beta.threads.runs.cancel(started[0].id, thread_id=thread.id)
    assert client.beta.threads.runs.poll(started[0].id, thread_id=thread.id).status == "cancelled"


def test_cancel_interrupts_the_model_stream(client: OpenAI, model, assistant, thread) -> None:
    model.text("slow " * 20, chunks=20, chunk_delay=0.5)
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.time() + 10
    while not client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data:
        assert time.time() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status in ("cancelling", "cancelled")
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert final.status == "cancelled" and final.cancelled_at
    assert time.monotonic() - t0 < 3  # long before the 10 s answer would have finished
    reply = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "run_cancelled"
    step = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data[0]
    assert step.status == "cancelled" and step.cancelled_at
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert err.value.code == "invalid_run_status"


def test_cancel_while_waiting_for_tool_outputs(client: OpenAI, model, assistant, thread) -> None:
    model.tool_calls([{"name": "get_weather", "arguments": {"city": "Kyiv"}}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert final.status == "cancelled" and final.required_action is None
    step = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data[0]
    assert step.status == "cancelled"


def test_create_and_run(client: OpenAI, model, assistant) -> None:
    model.text("new thread answer")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "start"}], "metadata": {"k": "v"}},
    )
    assert run.status == "completed"
    assert client.beta.threads.retrieve(run.thread_id).metadata == {"k": "v"}
    texts = [
        m.content[0].text.value
        for m in client.beta.threads.messages.list(thread_id=run.thread_id, order="asc")
    ]
    assert texts == ["start", "new thread answer"]


def test_runs_list_retrieve_and_steps(client: OpenAI, model, assistant, thread) -> None:
    ids = [
        client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id).id
        for _ in range(3)
    ]
    assert [r.id for r in walk(client.beta.threads.runs.list(thread_id=thread.id, limit=2))] == ids[
        ::-1
    ]
    assert client.beta.threads.runs.retrieve(ids[0], thread_id=thread.id).id == ids[0]
    step = client.beta.threads.runs.steps.list(run_id=ids[0], thread_id=thread.id).data[0]
    again = client.beta.threads.runs.steps.retrieve(
        step.id,
        thread_id=thread.id,
        run_id=ids[0],
        include=["step_details.tool_calls[*].file_search.results[*].content"],
    )
    assert again == step


def test_unknown_ids_are_404(client: OpenAI, assistant, thread) -> None:
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_missing")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id="thread_missing", assistant_id=assistant.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.list(run_id="run_missing", thread_id=thread.id)


def test_runs_are_invisible_to_other_projects(
    client: OpenAI, other_client: OpenAI, model, assistant, thread
) -> None:
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    step = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data[0]
    o = other_client
    for attempt in (
        lambda: o.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
        lambda: o.beta.threads.runs.list(thread_id=thread.id),
        lambda: o.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"x": "y"}),
        lambda: o.beta.threads.runs.cancel(run.id, thread_id=thread.id),
        lambda: o.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id),
        lambda: o.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id),
        lambda: o.beta.threads.runs.steps.retrieve(step.id, run_id=run.id, thread_id=thread.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    other_assistant = o.beta.assistants.create(model="m")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=other_assistant.id)


def test_deleting_a_thread_deletes_its_runs(
    client: OpenAI, model, assistant, thread, row_counts
) -> None:
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    before = row_counts()
    client.beta.threads.delete(thread.id)
    after = row_counts()
    assert before["runs"] - after["runs"] == 1 and before["run_steps"] - after["run_steps"] == 1
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)


def test_deleting_a_thread_while_its_run_executes_ends_the_run_cleanly(
    client: OpenAI, server, model, assistant, thread
) -> None:
    """The run's rows go with the thread: the runner stops quietly instead of crashing on
    rows that are gone (which logged `Task exception was never retrieved`), and a stream
    of the run ends with an error event instead of waiting forever."""
    model.text("A slow answer, word by word.", chunks=4, chunk_delay=0.4)
    events: list = []
    failures: list[Exception] = []

    def consume() -> None:
        try:
            stream = client.beta.threads.runs.create(
                thread_id=thread.id, assistant_id=assistant.id, stream=True
            )
            events.extend(stream)
        except openai.APIError as exc:
            failures.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    deadline = time.monotonic() + 10
    while "thread.message.delta" not in [e.event for e in events]:  # the answer streams
        assert time.monotonic() < deadline and reader.is_alive(), (events, failures)
        time.sleep(0.02)
    client.beta.threads.delete(thread.id)
    reader.join(timeout=10)
    assert not reader.is_alive(), "the stream never ended"
    assert failures and "thread was deleted" in str(failures[0]), (events, failures)
    run_id = events[0].data.id
    ended, crashed = f"run {run_id} ended: its thread was deleted", "never retrieved"
    deadline = time.monotonic() + 10
    while ended not in server.log() and crashed not in server.log():
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.1)
    time.sleep(0.5)  # a crash is logged when the task is collected, just after it ended
    log = server.log()
    assert crashed not in log and f"run {run_id} crashed" not in log
    assert ended in log
