"""Turn a run's view of its thread into chat-completions messages and tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import litellm
from sqlmodel import Session, col, select

from server.models import Message, Run, RunStep
from server.tools.base import ServerTool, StepCall

Tools = Mapping[str, ServerTool]


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    texts = [p["text"]["value"] for p in parts if p["type"] == "text"]
    if all(p["type"] == "text" for p in parts):
        return "\n".join(texts)
    out: list[dict[str, Any]] = []
    for part in parts:
        if part["type"] == "text":
            out.append({"type": "text", "text": part["text"]["value"]})
        elif part["type"] == "image_url":
            out.append({"type": "image_url", "image_url": part["image_url"]})
        elif part["type"] == "image_file":
            out.append({"type": "text", "text": f"[image file {part['image_file']['file_id']}]"})
    return out


def thread_messages(session: Session, run: Run) -> list[dict[str, Any]]:
    """The thread as the run saw it when created, then what this run has added."""
    rows = session.exec(
        select(Message)
        .where(Message.thread_id == run.thread_id, col(Message.seq) <= run.context_seq)
        .order_by(col(Message.seq))
    ).all()
    history = [{"role": m.role, "content": _content(m.content)} for m in rows]
    truncation = run.truncation_strategy or {}
    if truncation.get("type") == "last_messages" and truncation.get("last_messages"):
        history = history[-int(truncation["last_messages"]) :]
    return history


def run_turns(session: Session, run: Run, tools: Tools) -> list[dict[str, Any]]:
    """Assistant messages and tool round trips this run has produced so far."""
    out: list[dict[str, Any]] = []
    steps = session.exec(
        select(RunStep).where(RunStep.run_id == run.id).order_by(col(RunStep.seq))
    ).all()
    ordinals: dict[str, int] = {}  # each tool's calls are numbered in run order
    for step in steps:
        details = step.step_details
        if details["type"] == "message_creation":
            message = session.exec(
                select(Message).where(Message.id == details["message_creation"]["message_id"])
            ).first()
            if message is not None:
                out.append({"role": "assistant", "content": _content(message.content)})
        else:
            calls = [_as_chat_call(c, tools, ordinals) for c in details.get("tool_calls", [])]
            made = [c for c in calls if c is not None]
            if not made:
                continue
            out.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": c["id"], "type": "function", "function": c["function"]} for c in made
                    ],
                }
            )
            out += [{"role": "tool", "tool_call_id": c["id"], "content": c["output"]} for c in made]
    return out


def _as_chat_call(call: StepCall, tools: Tools, ordinals: dict[str, int]) -> dict[str, Any] | None:
    """A recorded tool call as the chat model made it, with the result it got back."""
    kind = call["type"]
    if call["type"] == "function":
        fn = call["function"]
        return {
            "id": call["id"],
            "function": {"name": fn["name"], "arguments": fn["arguments"]},
            "output": fn["output"] or "",
        }
    tool = tools.get(kind)
    if tool is None:
        return None
    ordinal = ordinals[kind] = ordinals.get(kind, -1) + 1
    arguments, output = tool.replay(call, ordinal)
    return {"id": call["id"], "function": {"name": kind, "arguments": arguments}, "output": output}


def system_prompt(run: Run) -> str | None:
    parts = [p for p in (run.instructions, run.additional_instructions) if p]
    return "\n\n".join(parts) or None


def build(session: Session, run: Run, tools: Tools) -> tuple[list[dict[str, Any]], bool]:
    """(messages, fits): `fits` is False when max_prompt_tokens cannot be met even after
    dropping all but the newest thread message (truncation `auto`)."""
    system = system_prompt(run)
    head = [{"role": "system", "content": system}] if system else []
    history = thread_messages(session, run)
    tail = run_turns(session, run, tools)
    if not run.max_prompt_tokens:
        return head + history + tail, True
    while True:
        messages = head + history + tail
        if count_tokens(run.model, messages) <= run.max_prompt_tokens:
            return messages, True
        if len(history) <= 1:  # the newest message must stay: nothing left to drop
            return messages, False
        history = history[1:]


def count_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    return int(litellm.token_counter(model=model, messages=messages))


def chat_tools(run: Run) -> list[dict[str, Any]]:
    """Function tools as chat-completions tools (server-side tools add their own)."""
    tools = []
    for tool in run.tools:
        if tool["type"] == "function":
            fn = dict(tool["function"])
            fn.setdefault("parameters", {"type": "object", "properties": {}})
            tools.append({"type": "function", "function": fn})
    return tools


def chat_tool_choice(run: Run, tools: Tools) -> Any:
    """The run's tool_choice for the chat model. A named server-side tool forces exactly
    its function: "required" would let the model call a function tool instead."""
    choice = run.tool_choice
    if isinstance(choice, dict):
        if choice["type"] == "function":
            return {"type": "function", "function": {"name": choice["function"]["name"]}}
        tool = tools.get(choice["type"])
        return tool.chat_tool_choice() if tool is not None else "required"
    return choice


def chat_response_format(run: Run) -> Any:
    fmt = run.response_format
    if fmt in (None, "auto") or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    return fmt
