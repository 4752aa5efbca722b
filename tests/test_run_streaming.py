"""Golden SSE tests: the exact event sequences the hosted API streamed, driven through
the SDK's AssistantEventHandler, plus the raw wire format."""

from __future__ import annotations

import json
import time

import httpx
from openai import AssistantEventHandler, OpenAI

from tests.conftest import KEY_ALPHA


def squeeze(items: list[str]) -> list[str]:
    """Collapse runs of the same item: how many deltas arrive is the model's business."""
    return [x for i, x in enumerate(items) if i == 0 or items[i - 1] != x]


RUN_START = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
MESSAGE_OPEN = [
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
]
TOOL_STEP_OPEN = ["thread.run.step.created", "thread.run.step.in_progress"]


class Recorder(AssistantEventHandler):
    """Records every event and every callback, in order."""

    def __init__(self, on_first_text=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.events: list[str] = []
        self.calls: list[str] = []
        self.text = ""
        self.tool_args: dict[int, str] = {}
        self._on_first_text = on_first_text

    def on_event(self, event) -> None:  # type: ignore[no-untyped-def]
        self.events.append(event.event)

    def on_run_step_created(self, run_step) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"step_created:{run_step.type}")

    def on_run_step_done(self, run_step) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"step_done:{run_step.status}")

    def on_message_created(self, message) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("message_created")

    def on_message_done(self, message) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"message_done:{message.status}")

    def on_text_created(self, text) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("text_created")

    def on_text_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("text_delta")
        if not self.text and self._on_first_text:
            self._on_first_text()
        self.text += delta.value

    def on_text_done(self, text) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("text_done")

    def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"tool_created:{tool_call.function.name}")

    def on_tool_call_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("tool_delta")
        self.tool_args[delta.index] = snapshot.function.arguments

    def on_tool_call_done(self, tool_call) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("tool_done")

    def on_end(self) -> None:
        self.calls.append("end")


def test_plain_answer_stream(client: OpenAI, model, assistant, thread) -> None:
    model.text("Hello from the stream", chunks=3)
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert handler.events == [
        *RUN_START,
        *MESSAGE_OPEN,
        *["thread.message.delta"] * 3,
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert handler.calls == [
        "step_created:message_creation",
        "message_created",
        "text_created",
        "text_delta",
        "text_delta",
        "text_delta",
        "text_done",
        "message_done:completed",
        "step_done:completed",
        "end",
    ]
    assert handler.text == "Hello from the stream"
    final = stream.get_final_messages()
    assert [m.content[0].text.value for m in final] == ["Hello from the stream"]
    assert stream.current_run.status == "completed"
    stored = client.beta.threads.messages.retrieve(final[0].id, thread_id=thread.id)
    assert stored.content[0].text.value == "Hello from the stream" and stored.status == "completed"


def test_function_call_stream_round_trip(client: OpenAI, model, assistant, thread) -> None:
    model.tool_calls(
        [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
        ],
        chunks=2,
    )
    first = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=first
    ) as stream:
        stream.until_done()
    assert squeeze(first.events) == [
        *RUN_START,
        *TOOL_STEP_OPEN,
        "thread.run.step.delta",
        "thread.run.requires_action",
    ]
    assert first.events.count("thread.run.step.delta") >= 4  # fragments of two calls
    assert squeeze(first.calls) == [
        "step_created:tool_calls",
        "tool_created:get_weather",
        "tool_delta",
        "tool_done",
        "tool_created:get_weather",
        "tool_delta",
        "tool_done",
        "end",
    ]
    assert {i: json.loads(a) for i, a in first.tool_args.items()} == {
        0: {"city": "Paris"},
        1: {"city": "Oslo"},
    }
    run = stream.current_run
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls

    model.text("Both sunny", chunks=2)
    second = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": c.id, "output": "sunny"} for c in calls],
        event_handler=second,
    ) as resumed:
        resumed.until_done()
    assert second.events == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
        *MESSAGE_OPEN,
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert second.text == "Both sunny"
    steps = client.beta.threads.runs.steps.list(
        run_id=run.id, thread_id=thread.id, order="asc"
    ).data
    assert [c.function.output for c in steps[0].step_details.tool_calls] == ["sunny", "sunny"]


def test_cancel_mid_stream(client: OpenAI, model, assistant, thread) -> None:
    model.text("a b c d e f g h", chunks=8, chunk_delay=0.3)
    run_ids: list[str] = []

    def cancel() -> None:
        client.beta.threads.runs.cancel(run_ids[0], thread_id=thread.id)

    handler = Recorder(on_first_text=cancel)

    def on_created(event) -> None:  # type: ignore[no-untyped-def]
        if event.event == "thread.run.created":
            run_ids.append(event.data.id)

    original = handler.on_event
    handler.on_event = lambda event: (on_created(event), original(event))  # type: ignore[method-assign]
    t0 = time.monotonic()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert time.monotonic() - t0 < 2.0  # the 2.4 s answer was cut short
    assert handler.events[: len(RUN_START) + len(MESSAGE_OPEN)] == [*RUN_START, *MESSAGE_OPEN]
    tail = [e for e in handler.events if e != "thread.message.delta"][
        len(RUN_START) + len(MESSAGE_OPEN) :
    ]
    assert tail == [
        "thread.run.cancelling",
        "thread.run.step.cancelled",
        "thread.message.incomplete",
        "thread.run.cancelled",
    ]
    assert "message_done:incomplete" in handler.calls
    message = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"
    assert message.content[0].text.value == handler.text  # what was streamed is kept


def test_failure_mid_stream(client: OpenAI, model, assistant, thread) -> None:
    model.fail_midstream(after_chunks=2, content="one two three four", chunks=4)
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert handler.events == [
        *RUN_START,
        *MESSAGE_OPEN,
        "thread.message.delta",
        "thread.message.delta",
        "thread.run.step.failed",
        "thread.message.incomplete",
        "thread.run.failed",
    ]
    assert stream.current_run.last_error.code == "server_error"


def test_upstream_error_before_any_output(client: OpenAI, model, assistant, thread) -> None:
    model.fail(429, "slow down")
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert handler.events == [*RUN_START, "thread.run.failed"]
    assert stream.current_run.last_error.code == "rate_limit_exceeded"


def test_create_and_run_stream(client: OpenAI, model, assistant) -> None:
    model.text("fresh", chunks=1)
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "go"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.events == [
        "thread.created",
        *RUN_START,
        *MESSAGE_OPEN,
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]


def _raw_stream(server, thread_id: str, body: dict) -> httpx.Response:  # type: ignore[type-arg]
    return httpx.Client(timeout=30).send(
        httpx.Client().build_request(
            "POST",
            f"{server.base_url}/v1/threads/{thread_id}/runs",
            json={"stream": True, **body},
            headers={"Authorization": f"Bearer {KEY_ALPHA}"},
        ),
        stream=True,
    )


def test_wire_format_and_indexes(server, client: OpenAI, model, assistant, thread) -> None:
    model.tool_calls(
        [{"name": "get_weather", "arguments": {"city": "Bern"}}], content="Let me check.", chunks=2
    )
    response = _raw_stream(server, thread.id, {"assistant_id": assistant.id})
    assert response.headers["content-type"].startswith("text/event-stream")
    raw = response.read().decode()
    blocks = [b for b in raw.split("\n\n") if b]
    assert blocks[-1] == "event: done\ndata: [DONE]"
    events = []
    for block in blocks[:-1]:
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((name_line[7:], json.loads(data_line[6:])))
    for name, data in events:
        if name == "thread.message.delta":
            assert all("index" in part for part in data["delta"]["content"])
        if name == "thread.run.step.delta":
            assert all("index" in call for call in data["delta"]["step_details"]["tool_calls"])
    names = [n for n, _ in events]
    # Text before the tool calls is its own finished message, then the tool step.
    assert names.index("thread.message.completed") < names.index("thread.run.step.delta")
    assert names[-1] == "thread.run.requires_action"
    client.beta.threads.runs.cancel(events[0][1]["id"], thread_id=thread.id)


def test_client_disconnect_does_not_stop_the_run(
    server, client: OpenAI, model, assistant, thread
) -> None:
    model.text("keeps going after you leave", chunks=4, chunk_delay=0.2)
    response = _raw_stream(server, thread.id, {"assistant_id": assistant.id})
    first = next(response.iter_lines())
    response.close()
    assert first == "event: thread.run.created"
    run = client.beta.threads.runs.list(thread_id=thread.id).data[0]
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert final.status == "completed"
    assert client.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text.value == (
        "keeps going after you leave"
    )


def test_cancel_on_disconnect_extension(server, client: OpenAI, model, assistant, thread) -> None:
    model.text("you will not see this end", chunks=10, chunk_delay=0.3)
    response = _raw_stream(
        server, thread.id, {"assistant_id": assistant.id, "cancel_on_disconnect": True}
    )
    lines = response.iter_lines()
    while next(lines) != "event: thread.message.delta":
        pass
    response.close()
    run = client.beta.threads.runs.list(thread_id=thread.id).data[0]
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id).status == "cancelled"
