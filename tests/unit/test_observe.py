"""The run-observer seam: the recorded stream passes events through unchanged while
filling the ModelCall, and a failing observer never reaches the run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from server.models import Run
from server.runs.model_client import Finish, ModelRequest, StreamEvent, TextDelta, ToolCallDelta
from server.runs.observe import ModelCall, Observers, RunObserver, recorded


async def _events() -> AsyncIterator[StreamEvent]:
    yield TextDelta("Hel")
    yield TextDelta("lo")
    yield ToolCallDelta(0, "call_1", "get_", '{"a"')
    yield ToolCallDelta(0, None, "weather", ": 1}")
    yield Finish("tool_calls", {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})


def _call() -> ModelCall:
    return ModelCall(Run(id="run_1"), 1, ModelRequest(model="m", messages=[]))


def test_recorded_stream_passes_events_through_and_fills_the_call() -> None:
    call = _call()

    async def consume() -> list[StreamEvent]:
        return [event async for event in recorded(_events(), call)]

    async def plain() -> list[StreamEvent]:
        return [event async for event in _events()]

    assert asyncio.run(consume()) == asyncio.run(plain())
    assert call.text == "Hello"
    assert call.answer_tool_calls() == [
        {"id": "call_1", "name": "get_weather", "arguments": '{"a": 1}'}
    ]
    assert call.finish is not None and call.finish.reason == "tool_calls"
    assert call.usage["total_tokens"] == 5
    assert call.first_token_at is not None and call.first_token_at >= call.started_at


def test_a_failing_observer_is_contained_and_the_next_still_runs() -> None:
    seen: list[str] = []

    class Broken(RunObserver):
        async def model_call_ended(self, call: ModelCall) -> None:
            raise RuntimeError("observer bug")

    class Recorder(RunObserver):
        async def model_call_ended(self, call: ModelCall) -> None:
            seen.append(call.run.id)

    asyncio.run(Observers([Broken(), Recorder()]).model_call_ended(_call()))
    assert seen == ["run_1"]
