"""v2 answers in their v1 shapes: JSON bodies, list pages, error envelopes and stream
events, dispatched on the object's `object` field (the shapes live in `shapes`)."""

from __future__ import annotations

import json
from typing import Any

from server.v1compat import shapes
from server.v1compat.inner import Inner


def encode(obj: Any) -> bytes:
    """JSON as the v2 routes write it (compact, UTF-8)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def with_length(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    return [*kept, (b"content-length", str(length).encode())]


async def to_v1(inner: Inner, obj: Any) -> Any:
    """A v2 object (or list page, or stream event payload) in its v1 shape."""
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("object")
    if kind == "list" and isinstance(obj.get("data"), list):
        return {**obj, "data": [await to_v1(inner, item) for item in obj["data"]]}
    if kind == "assistant":
        return shapes.assistant_to_v1(obj)
    if kind == "thread":
        return shapes.thread_to_v1(obj)
    if kind == "thread.message":
        return shapes.message_to_v1(obj)
    if kind == "thread.message.delta":
        return shapes.message_delta_to_v1(obj)
    if kind == "thread.run":
        return shapes.run_to_v1(obj, await inner.assistant_file_ids(obj["assistant_id"]))
    if kind == "thread.run.step":
        return shapes.step_to_v1(obj)
    if kind == "thread.run.step.delta":
        return shapes.step_delta_to_v1(obj)
    return obj


async def reply_to_v1(inner: Inner, status: int, body: Any) -> Any:
    if 200 <= status < 300:
        return await to_v1(inner, body)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "param" in error:
        return {**body, "error": {**error, "param": shapes.param_to_v1(error["param"])}}
    return body


async def event_to_v1(inner: Inner, event: bytes) -> bytes:
    lines = event.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data: {"):
            data = await to_v1(inner, json.loads(line[len(b"data: ") :]))
            lines[i] = b"data: " + encode(data)
    return b"\n".join(lines)
