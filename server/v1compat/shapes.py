"""Assistants v1 <-> v2 wire shapes, as pure functions (no I/O).

v1 put `file_ids` on assistants and messages and called file search `retrieval`; v2 moved
files into `tool_resources` and `attachments`. The keys kept in each v1 object are the
fields of openai==1.20.0's types, the last SDK that spoke v1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

JSON = dict[str, Any]

# Marks the vector store this layer made for an assistant's v1 `file_ids`, so that later
# v1 changes sync that store and leave a store attached by a v2 client alone.
IMPLICIT_STORE_KEY = "assistd_v1"
IMPLICIT_STORE_VALUE = "assistant_files"
# v1 message files served whichever tool the run had; v2 attachments must name them.
MESSAGE_FILE_TOOLS: list[JSON] = [{"type": "file_search"}, {"type": "code_interpreter"}]

ASSISTANT_KEYS = (
    "id",
    "object",
    "created_at",
    "name",
    "description",
    "model",
    "instructions",
    "tools",
    "file_ids",
    "metadata",
)
THREAD_KEYS = ("id", "object", "created_at", "metadata")
MESSAGE_KEYS = (
    "id",
    "object",
    "created_at",
    "thread_id",
    "status",
    "incomplete_details",
    "completed_at",
    "incomplete_at",
    "role",
    "content",
    "assistant_id",
    "run_id",
    "file_ids",
    "metadata",
)
RUN_KEYS = (
    "id",
    "object",
    "created_at",
    "thread_id",
    "assistant_id",
    "status",
    "required_action",
    "last_error",
    "expires_at",
    "started_at",
    "cancelled_at",
    "failed_at",
    "completed_at",
    "incomplete_details",
    "model",
    "instructions",
    "tools",
    "file_ids",
    "metadata",
    "usage",
    "temperature",
    "max_prompt_tokens",
    "max_completion_tokens",
    "truncation_strategy",
    "tool_choice",
    "response_format",
)
STEP_KEYS = (
    "id",
    "object",
    "created_at",
    "assistant_id",
    "thread_id",
    "run_id",
    "type",
    "status",
    "step_details",
    "last_error",
    "expired_at",
    "cancelled_at",
    "failed_at",
    "completed_at",
    "metadata",
    "usage",
)


def implicit_store_metadata() -> dict[str, str]:
    return {IMPLICIT_STORE_KEY: IMPLICIT_STORE_VALUE}


def is_implicit_store(store: JSON) -> bool:
    return (store.get("metadata") or {}).get(IMPLICIT_STORE_KEY) == IMPLICIT_STORE_VALUE


def unique(ids: list[Any]) -> list[Any]:
    return list(dict.fromkeys(ids))


# The one tool v2 renamed: v1's `retrieval` is v2's `file_search`. Tools, tool_choice and
# tool calls all go through `_retyped`, in either direction.
V1_FILE_TOOL, V2_FILE_TOOL = "retrieval", "file_search"


def _is_type(value: Any, kind: str) -> bool:
    return isinstance(value, dict) and value.get("type") == kind


def _retyped(value: Any, old: str, new: str) -> Any:
    """A tool, tool_choice or tool call of type `old` as bare type `new` (neither side's
    options mean anything to the other: v1's retrieval has none); anything else as is."""
    return {"type": new} if _is_type(value, old) else value


def _retyped_all(values: Any, old: str, new: str) -> Any:
    """`_retyped` over a list; a non-list (malformed) is left for v2 validation."""
    return [_retyped(v, old, new) for v in values] if isinstance(values, list) else values


def _with(obj: JSON, **rewrites: Callable[[Any], Any]) -> JSON:
    """A copy of `obj` with each field named in `rewrites` that it has passed through
    that function; fields it lacks stay absent."""
    return {k: rewrites[k](v) if k in rewrites else v for k, v in obj.items()}


# --- requests: v1 -> v2 ----------------------------------------------------------------


def tools_to_v2(tools: Any) -> Any:
    """`retrieval` -> `file_search`; anything malformed is left for v2 validation."""
    return _retyped_all(tools, V1_FILE_TOOL, V2_FILE_TOOL)


def has_file_search(tools: Any) -> bool:
    return isinstance(tools, list) and any(_is_type(t, V2_FILE_TOOL) for t in tools)


def tool_choice_to_v2(choice: Any) -> Any:
    return _retyped(choice, V1_FILE_TOOL, V2_FILE_TOOL)


def assistant_resources(file_ids: Any, tools: Any) -> JSON:
    """v1 assistant files as v2 tool_resources: the list itself is kept as the
    code_interpreter files (v1's only ordered record of it), and with retrieval on, a new
    implicit vector store holds the same files."""
    resources: JSON = {"code_interpreter": {"file_ids": file_ids}}
    if has_file_search(tools) and file_ids:
        store = {"file_ids": file_ids, "metadata": implicit_store_metadata()}
        resources["file_search"] = {"vector_stores": [store]}
    return resources


def assistant_create_to_v2(body: JSON) -> JSON:
    out = _with(body, tools=tools_to_v2)
    file_ids = out.pop("file_ids", None)
    if file_ids:
        out["tool_resources"] = assistant_resources(file_ids, out.get("tools"))
    return out


def message_to_v2(message: Any) -> Any:
    """`file_ids` -> one attachment per file, for both file tools."""
    if not isinstance(message, dict) or "file_ids" not in message:
        return message
    out = dict(message)
    file_ids = out.pop("file_ids")
    if isinstance(file_ids, list):
        out["attachments"] = [
            {"file_id": f, "tools": [dict(t) for t in MESSAGE_FILE_TOOLS]} for f in file_ids
        ]
    elif file_ids is not None:
        out["attachments"] = file_ids  # rejected by v2 validation, reported as file_ids
    return out


def messages_to_v2(messages: Any) -> Any:
    return [message_to_v2(m) for m in messages] if isinstance(messages, list) else messages


def thread_create_to_v2(body: JSON) -> JSON:
    return _with(body, messages=messages_to_v2)


def run_create_to_v2(body: JSON) -> JSON:
    return _with(
        body,
        tools=tools_to_v2,
        tool_choice=tool_choice_to_v2,
        additional_messages=messages_to_v2,
    )


def thread_and_run_to_v2(body: JSON) -> JSON:
    def thread(value: Any) -> Any:
        return thread_create_to_v2(value) if isinstance(value, dict) else value

    return _with(body, tools=tools_to_v2, tool_choice=tool_choice_to_v2, thread=thread)


_PARAM_RULES = (
    (re.compile(r"attachments(\[\d+\])?(\.file_id)?"), lambda m: f"file_ids{m.group(1) or ''}"),
    (re.compile(r"^tool_resources\.code_interpreter\.file_ids"), lambda m: "file_ids"),
    (re.compile(r"^tool_resources\.file_search\.vector_stores.*"), lambda m: "file_ids"),
)


def param_to_v1(param: Any) -> Any:
    """An error's `param` named after the v2 field this layer wrote, renamed to the v1
    field the client sent: `messages[0].attachments[1].file_id` -> `messages[0].file_ids[1]`."""
    if not isinstance(param, str):
        return param
    for pattern, repl in _PARAM_RULES:
        param = pattern.sub(repl, param)
    return param


# --- responses: v2 -> v1 ---------------------------------------------------------------


def pick(obj: JSON, keys: tuple[str, ...]) -> JSON:
    return {k: obj.get(k) for k in keys}


def tools_to_v1(tools: Any) -> Any:
    return _retyped_all(tools, V2_FILE_TOOL, V1_FILE_TOOL)


def tool_choice_to_v1(choice: Any) -> Any:
    return _retyped(choice, V2_FILE_TOOL, V1_FILE_TOOL)


def assistant_file_ids(assistant: JSON) -> list[str]:
    resources = assistant.get("tool_resources") or {}
    return list((resources.get("code_interpreter") or {}).get("file_ids") or [])


def assistant_to_v1(obj: JSON) -> JSON:
    out = pick(obj, ASSISTANT_KEYS)
    out["tools"] = tools_to_v1(obj.get("tools") or [])
    out["file_ids"] = assistant_file_ids(obj)
    out["metadata"] = obj.get("metadata") or {}
    return out


def thread_to_v1(obj: JSON) -> JSON:
    return pick(obj, THREAD_KEYS)


def message_file_ids(message: JSON) -> list[str]:
    return unique([a["file_id"] for a in message.get("attachments") or [] if "file_id" in a])


def content_to_v1(content: Any) -> Any:
    """v1's file_citation requires `quote`; v2 made it optional."""
    if not isinstance(content, list):
        return content
    return [_part_to_v1(part) for part in content]


def _part_to_v1(part: Any) -> Any:
    text = part.get("text") if isinstance(part, dict) else None
    if not isinstance(text, dict) or not isinstance(text.get("annotations"), list):
        return part
    notes = [
        {**note, "file_citation": {"quote": "", **note["file_citation"]}}
        if isinstance(note, dict) and isinstance(note.get("file_citation"), dict)
        else note
        for note in text["annotations"]
    ]
    return {**part, "text": {**text, "annotations": notes}}


def message_to_v1(obj: JSON) -> JSON:
    out = pick(obj, MESSAGE_KEYS)
    out["file_ids"] = message_file_ids(obj)
    out["content"] = content_to_v1(obj.get("content"))
    return out


def message_delta_to_v1(obj: JSON) -> JSON:
    delta = _with(obj.get("delta") or {}, content=content_to_v1)
    delta.pop("attachments", None)
    return {**obj, "delta": delta}


def run_to_v1(obj: JSON, file_ids: list[str]) -> JSON:
    out = pick(obj, RUN_KEYS)
    out["tools"] = tools_to_v1(obj.get("tools") or [])
    out["tool_choice"] = tool_choice_to_v1(obj.get("tool_choice"))
    out["file_ids"] = file_ids
    return out


def tool_call_to_v1(call: Any) -> Any:
    """A file_search call -> v1's retrieval call, whose body was always empty."""
    if not _is_type(call, V2_FILE_TOOL):
        return call
    out: JSON = {"id": call.get("id"), "type": V1_FILE_TOOL, V1_FILE_TOOL: {}}
    if "index" in call:
        out = {"index": call["index"], **out}
    return out


def step_details_to_v1(details: Any) -> Any:
    if not isinstance(details, dict) or not isinstance(details.get("tool_calls"), list):
        return details
    return {**details, "tool_calls": [tool_call_to_v1(c) for c in details["tool_calls"]]}


def step_to_v1(obj: JSON) -> JSON:
    out = pick(obj, STEP_KEYS)
    out["step_details"] = step_details_to_v1(obj.get("step_details"))
    return out


def step_delta_to_v1(obj: JSON) -> JSON:
    return {**obj, "delta": _with(obj.get("delta") or {}, step_details=step_details_to_v1)}
