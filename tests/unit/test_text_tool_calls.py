"""Tool calls written as text (server/runs/text_tool_calls.py), in process."""

from __future__ import annotations

import json

import pytest

from server.runs.text_tool_calls import could_be_text_tool_call, parse_text_tool_calls

NAMES = {"get_weather", "lookup"}


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '```\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
        '  {"function": {"name": "get_weather", "parameters": {"city": "Paris"}}}  ',
        '{"tool_calls": [{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}]}',
    ],
)
def test_one_call_in_any_of_the_shapes_small_models_write(text: str) -> None:
    calls = parse_text_tool_calls(text, NAMES)
    assert calls is not None and len(calls) == 1
    name, arguments = calls[0]
    assert name == "get_weather" and json.loads(arguments) == {"city": "Paris"}


def test_several_calls_keep_their_order_and_string_arguments_pass_through() -> None:
    text = '[{"name": "lookup", "arguments": "raw"}, {"name": "get_weather", "arguments": {}}]'
    assert parse_text_tool_calls(text, NAMES) == [("lookup", "raw"), ("get_weather", "{}")]


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Paris is mild.",
        '{"name": "unknown_tool", "arguments": {}}',  # not a function the run has
        '[{"name": "lookup"}, {"name": "nope"}]',  # one unknown spoils the lot
        '["lookup"]',
        "[]",
        '{"name": "lookup"',  # cut short
    ],
)
def test_anything_else_stays_text(text: str) -> None:
    assert parse_text_tool_calls(text, NAMES) is None


@pytest.mark.parametrize(
    "head", ["", "  ", "{", ' [{"na', "```", "```json", "<tool", "<tool_call>"]
)
def test_text_that_may_still_become_a_call_is_held(head: str) -> None:
    assert could_be_text_tool_call(head)


@pytest.mark.parametrize("head", ["Hello", "<b>bold</b>", "1. first", "`code`"])
def test_plain_text_is_released_at_once(head: str) -> None:
    assert not could_be_text_tool_call(head)
