"""The scripted chat model really is called by litellm over HTTP, in OpenAI's format."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import httpx  # noqa: E402
import litellm  # noqa: E402
import openai  # noqa: E402
import pytest  # noqa: E402
from litellm.exceptions import MidStreamFallbackError  # noqa: E402

from tests.support.scripted_model import (  # noqa: E402
    Reply,
    ScriptedModel,
    running_scripted_model,
    start_scripted_model,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    },
]


@pytest.fixture(scope="module")
def server():
    model, base_url, stop = start_scripted_model()
    yield model, base_url
    stop()


@pytest.fixture
def scripted(server):
    model, base_url = server
    model.reset()
    yield model, base_url
    model.reset()


def run(coro):
    return asyncio.run(coro)


async def call(base_url: str, **kwargs):
    kwargs.setdefault("messages", MESSAGES)
    return await litellm.acompletion(
        model="openai/any-name", api_base=base_url, api_key="x", **kwargs
    )


async def collect(base_url: str, **kwargs):
    stream = await call(base_url, stream=True, **kwargs)
    return [chunk async for chunk in stream]


def joined_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --------------------------------------------------------------------------- text


def test_streamed_text_chunks_and_usage(scripted):
    model, base_url = scripted
    model.text("Sunny and warm today.", chunks=4)

    chunks = run(collect(base_url, stream_options={"include_usage": True}, max_retries=0))

    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert [c.choices[0].delta.content for c in content_chunks] == [
        "Sunny ",
        "and w",
        "arm t",
        "oday.",
    ]
    assert joined_text(chunks) == "Sunny and warm today."
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    usages = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usages, "litellm should surface the final usage chunk"
    usage = usages[-1]
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    (sent,) = model.requests
    assert sent["model"] == "any-name"  # the "openai/" prefix is stripped
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == MESSAGES


@pytest.mark.parametrize("stream_usage", ["always", "requested"])
def test_stream_without_include_usage_is_harmless(stream_usage):
    with running_scripted_model(stream_usage=stream_usage) as (model, base_url):
        model.text("plain stream", chunks=2)
        chunks = run(collect(base_url, max_retries=0))
        assert joined_text(chunks) == "plain stream"
        assert "stream_options" not in model.requests[0]


def test_non_streaming_text_usage_and_default_echo(scripted):
    model, base_url = scripted
    model.text("Forty-two.")

    first = run(call(base_url, max_retries=0))
    assert first.choices[0].message.content == "Forty-two."
    assert first.choices[0].finish_reason == "stop"
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens

    # empty queue -> echo of the last user message
    second = run(call(base_url, max_retries=0))
    assert second.choices[0].message.content == "You said: What is the weather?"
    assert model.call_count == 2


def test_finish_reason_length(scripted):
    model, base_url = scripted
    model.text("truncated ans", finish_reason="length")
    model.text("truncated ans", finish_reason="length")

    resp = run(call(base_url, max_retries=0))
    assert resp.choices[0].finish_reason == "length"
    chunks = run(collect(base_url, max_retries=0))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_fifo_order_and_stall(scripted):
    model, base_url = scripted
    model.text("one").stall(0.3, "two").text("three")

    async def three_calls():
        out = []
        for _ in range(3):
            t0 = time.monotonic()
            resp = await call(base_url, max_retries=0)
            out.append((resp.choices[0].message.content, time.monotonic() - t0))
        return out

    results = run(three_calls())
    assert [text for text, _ in results] == ["one", "two", "three"]
    assert results[1][1] >= 0.3
    assert model.pending == 0


# --------------------------------------------------------------------------- tools


def test_streamed_parallel_tool_calls_reassemble_by_index(scripted):
    model, base_url = scripted
    model.tool_calls(
        [
            {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
            {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
        ],
        chunks=4,
    )

    chunks = run(collect(base_url, tools=TOOLS, max_retries=0))

    calls: dict[int, dict] = {}
    fragments_per_index: dict[int, int] = {}
    for chunk in chunks:
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
                fragments_per_index[tc.index] = fragments_per_index.get(tc.index, 0) + 1

    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert calls[1]["name"] == "get_time"
    assert json.loads(calls[1]["arguments"]) == {"tz": "Europe/Paris"}
    assert all(c["id"].startswith("call_") for c in calls.values())
    assert calls[0]["id"] != calls[1]["id"]
    assert fragments_per_index == {0: 4, 1: 4}  # arguments really were streamed in pieces
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]


def test_non_streaming_tool_calls(scripted):
    model, base_url = scripted
    model.tool_calls(
        [
            {"name": "get_weather", "arguments": '{"city": "Oslo"}', "id": "call_fixed1"},
            {"name": "get_time", "arguments": "{}"},
        ]
    )
    resp = run(call(base_url, tools=TOOLS, max_retries=0))
    message = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert [tc.function.name for tc in message.tool_calls] == ["get_weather", "get_time"]
    assert message.tool_calls[0].id == "call_fixed1"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Oslo"}


def test_malformed_tool_json_passes_through_untouched(scripted):
    model, base_url = scripted
    model.malformed_tool_json("lookup", '{"query": "unterminated')
    model.malformed_tool_json("lookup", '{"query": "unterminated')

    resp = run(call(base_url, tools=TOOLS, max_retries=0))
    args = resp.choices[0].message.tool_calls[0].function.arguments
    assert args == '{"query": "unterminated'
    with pytest.raises(json.JSONDecodeError):
        json.loads(args)

    chunks = run(collect(base_url, tools=TOOLS, max_retries=0))
    streamed = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
    )
    assert streamed == '{"query": "unterminated'


def test_text_tool_call_arrives_as_plain_content(scripted):
    model, base_url = scripted
    model.text_tool_call("get_weather", {"city": "Rome"})
    model.text_tool_call("get_weather", '{"city": "Rome"}', wrap="hermes")

    resp = run(call(base_url, tools=TOOLS, max_retries=0))
    message = resp.choices[0].message
    assert not message.tool_calls
    assert json.loads(message.content) == {"name": "get_weather", "arguments": {"city": "Rome"}}

    chunks = run(collect(base_url, tools=TOOLS, max_retries=0))
    text = joined_text(chunks)
    assert text.startswith("<tool_call>") and '"city": "Rome"' in text


def test_request_parameters_are_recorded(scripted):
    model, base_url = scripted
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
            "strict": True,
        },
    }
    run(
        call(
            base_url,
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
            response_format=schema,
            temperature=0.2,
            top_p=0.5,
            max_tokens=33,
            max_retries=0,
        )
    )
    sent = model.last_request
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["response_format"] == schema
    assert sent["temperature"] == 0.2
    assert sent["top_p"] == 0.5
    assert sent["max_tokens"] == 33
    assert "stream" not in sent
    assert model.request_headers[-1]["authorization"] == "Bearer x"


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("status", "exc_class"),
    [
        (429, litellm.RateLimitError),
        (500, litellm.InternalServerError),
        (503, litellm.ServiceUnavailableError),
        (400, litellm.BadRequestError),
    ],
)
@pytest.mark.parametrize("no_retry", [{"num_retries": 0}, {"max_retries": 0}])
@pytest.mark.parametrize("stream", [False, True])
def test_http_errors_map_to_litellm_exceptions(scripted, status, exc_class, no_retry, stream):
    model, base_url = scripted
    for _ in range(3):
        model.fail(status, f"scripted {status}")

    async def go():
        if stream:
            return await collect(base_url, **no_retry)
        return await call(base_url, **no_retry)

    with pytest.raises(exc_class) as info:
        run(go())
    assert info.value.status_code == status
    assert f"scripted {status}" in str(info.value)
    assert isinstance(info.value, openai.APIError)  # the common base of all of them
    assert model.call_count == 1  # no hidden retries


def test_default_openai_client_retries_are_visible_in_the_count(scripted):
    model, base_url = scripted
    for _ in range(3):
        model.fail(429, "slow down", headers={"retry-after-ms": "1"})
    with pytest.raises(litellm.RateLimitError):
        run(call(base_url))
    assert model.call_count == 3  # 1 try + the openai client's 2 default retries


def test_error_envelope_over_raw_http(scripted):
    model, base_url = scripted
    model.fail(429, "Rate limit reached", headers={"retry-after": "7"})
    r = httpx.post(f"{base_url}/chat/completions", json={"model": "m", "messages": MESSAGES})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json() == {
        "error": {
            "message": "Rate limit reached",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    models = httpx.get(f"{base_url}/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "scripted-model"


def test_stall_past_timeout_raises_litellm_timeout(scripted):
    model, base_url = scripted
    model.stall(2.0)
    t0 = time.monotonic()
    with pytest.raises(litellm.Timeout):
        run(call(base_url, timeout=0.2, max_retries=0))
    assert time.monotonic() - t0 < 1.5
    assert model.call_count == 1


@pytest.mark.parametrize("mode", ["abort", "error_event"])
def test_fail_midstream_raises_during_iteration(scripted, mode):
    model, base_url = scripted
    model.fail_midstream(after_chunks=2, content="abcdefghij", chunks=5, mode=mode)

    received: list[str] = []

    async def go():
        stream = await call(base_url, stream=True, max_retries=0)  # the stream does start
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    with pytest.raises(MidStreamFallbackError) as info:
        run(go())
    assert received == ["ab", "cd"]
    assert isinstance(info.value, litellm.ServiceUnavailableError)
    assert model.call_count == 1


def test_fail_midstream_non_streaming_truncates_body(scripted):
    model, base_url = scripted
    model.fail_midstream(after_chunks=1)
    with pytest.raises(litellm.InternalServerError, match="Connection error"):
        run(call(base_url, max_retries=0))
    assert model.call_count == 1


# --------------------------------------------------------------------------- plumbing


def test_concurrent_calls_and_enqueue_from_another_thread(scripted):
    model, base_url = scripted
    n = 20

    def feeder():
        for i in range(n):
            model.text(f"reply {i}", chunks=2)

    thread = threading.Thread(target=feeder)
    thread.start()
    thread.join()

    async def many():
        return await asyncio.gather(*(call(base_url, max_retries=0) for _ in range(n)))

    replies = run(many())
    assert sorted(r.choices[0].message.content for r in replies) == sorted(
        f"reply {i}" for i in range(n)
    )
    assert len(model.wait_for_requests(n, timeout=1)) == n


def test_default_reply_function_and_control_endpoints(scripted):
    model, base_url = scripted
    model.set_default(lambda body: Reply(content=f"{len(body['messages'])} messages"))
    assert run(call(base_url, max_retries=0)).choices[0].message.content == "2 messages"

    root = base_url.removesuffix("/v1")
    r = httpx.post(
        f"{root}/_scripted/replies",
        json=[
            {"kind": "tool_calls", "tool_calls": [{"name": "get_time", "arguments": "{}"}]},
            {"kind": "fail", "status": 429},
        ],
    )
    assert r.json() == {"queued": 2, "pending": 2}
    resp = run(call(base_url, tools=TOOLS, max_retries=0))
    assert resp.choices[0].message.tool_calls[0].id.startswith("call_")
    with pytest.raises(litellm.RateLimitError):
        run(call(base_url, max_retries=0))
    assert len(httpx.get(f"{root}/_scripted/requests").json()["requests"]) == 3


def test_scripted_model_object_is_usable_standalone():
    model = ScriptedModel()
    model.text("a").fail(500)
    assert model.pending == 2
    model.reset()
    assert model.pending == 0 and model.requests == []


def test_runs_as_a_separate_process_with_latency():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.scripted_model",
            "--port",
            "0",
            "--latency-ms",
            "200",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, proc.stderr.read()
        base_url = line.rsplit(" ", 1)[-1].strip()

        async def timed():
            t0 = time.monotonic()
            chunks = await collect(base_url, max_retries=0)
            return chunks, time.monotonic() - t0

        chunks, elapsed = run(timed())
        assert joined_text(chunks) == "You said: What is the weather?"
        assert elapsed >= 0.2
    finally:
        proc.terminate()
        proc.wait(timeout=5)
