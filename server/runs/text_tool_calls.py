"""Tool calls written as text: local models without native tool calling often answer
with the call as JSON text. While streaming, such text is held back (it must not leak as
the reply); once complete, it becomes a real tool call when it names known functions."""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
_TAG = re.compile(r"^<tool_call>\s*(.*?)\s*</tool_call>$", re.S)


def could_be_text_tool_call(text: str) -> bool:
    """While streaming: might this text still turn out to be a JSON tool call?"""
    head = text.lstrip()[:12]
    return not head or head[0] in "{[" or head.startswith(("```", "<tool_call>"[: len(head)]))


def parse_text_tool_calls(text: str, function_names: set[str]) -> list[tuple[str, str]] | None:
    """Local models without native tool calling often answer with the call as JSON text.
    Returns [(name, arguments_json)] when the whole text is such a call to known functions."""
    body = text.strip()
    for pattern in (_FENCE, _TAG):
        match = pattern.match(body)
        if match:
            body = match.group(1).strip()
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        data = data["tool_calls"]
    items = data if isinstance(data, list) else [data]
    calls: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, dict):
            return None
        if isinstance(item.get("function"), dict):
            item = item["function"]
        name = item.get("name")
        args = item.get("arguments", item.get("parameters", {}))
        if name not in function_names:
            return None
        calls.append((name, args if isinstance(args, str) else json.dumps(args)))
    return calls or None
