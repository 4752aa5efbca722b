"""A scripted, OpenAI-compatible chat-completions server for tests and benchmarks.

The server speaks just enough of the OpenAI HTTP API for litellm (``openai/<name>``
models with ``api_base=...``) to talk to it over real HTTP:

* ``POST /v1/chat/completions`` -- streaming (SSE, ``data: [DONE]``) and non-streaming
* ``GET /v1/models``

Replies are scripted through a :class:`ScriptedModel`: every call to the endpoint
pops the next queued :class:`Reply` (FIFO); when the queue is empty a default
reply echoes the last user message (``"You said: ..."``). Every request body is
recorded in :attr:`ScriptedModel.requests`.

In-process use (the server runs in a daemon thread)::

    model, base_url, stop = start_scripted_model()
    model.text("Hello there", chunks=3)
    model.tool_calls([{"name": "get_weather", "arguments": '{"city": "Paris"}'}])
    ...  # point the code under test at base_url (".../v1")
    stop()

or ``with running_scripted_model() as (model, base_url): ...``.

Separate process (for benchmarks)::

    python -m tests.support.scripted_model --port 8011 --latency-ms 200

The separate process can be scripted over HTTP via ``POST /_scripted/replies``
(a reply dict or a list of them, see :meth:`Reply.to_dict`), inspected via
``GET /_scripted/requests`` and reset via ``POST /_scripted/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "Reply",
    "ScriptedModel",
    "ScriptedModelServer",
    "create_app",
    "running_scripted_model",
    "start_scripted_model",
]

DEFAULT_MODEL_ID = "scripted-model"

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}

_REPLY_KINDS = ("text", "tool_calls", "fail", "fail_midstream")


# --------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """One scripted answer to one chat-completions call.

    ``kind`` is one of ``text``, ``tool_calls``, ``fail`` or ``fail_midstream``.
    ``content=None`` on a text reply means "echo the last user message".
    ``delay`` is slept before anything is sent (before the HTTP status line);
    ``chunk_delay`` is slept before every stream chunk after the first.
    """

    kind: str = "text"
    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    chunks: int = 1
    finish_reason: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    # fail
    status: int = 500
    message: str = "scripted failure"
    error_type: str | None = None
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # fail_midstream: "abort" drops the TCP connection, "error_event" sends an
    # SSE ``data: {"error": {...}}`` event and ends the stream.
    after_chunks: int = 1
    midstream_mode: str = "abort"
    # explicit usage override: {"prompt_tokens": .., "completion_tokens": ..}
    usage: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _REPLY_KINDS:
            raise ValueError(f"unknown reply kind {self.kind!r}; expected one of {_REPLY_KINDS}")
        if self.midstream_mode not in ("abort", "error_event"):
            raise ValueError("midstream_mode must be 'abort' or 'error_event'")
        self.chunks = max(1, int(self.chunks))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown reply fields: {sorted(unknown)}")
        return cls(**data)


def _new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _normalise_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for call in calls:
        if "name" not in call:
            raise ValueError(f"tool call needs a 'name': {call!r}")
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        out.append(
            {"id": call.get("id") or _new_call_id(), "name": call["name"], "arguments": arguments}
        )
    return out


# --------------------------------------------------------------------------- the model


class ScriptedModel:
    """FIFO script of replies plus a record of every request received.

    All public methods are thread-safe: tests enqueue from their own thread while
    the server consumes from the uvicorn thread.
    """

    def __init__(
        self,
        *,
        model_ids: list[str] | None = None,
        latency: float = 0.0,
        default_text: str | None = None,
        default_chunks: int = 3,
        default_chunk_delay: float = 0.0,
        stream_usage: str = "always",
    ) -> None:
        """
        ``latency``: seconds slept before every reply (added to the reply's ``delay``).
        ``default_text``: fixed default reply instead of the ``"You said: ..."`` echo.
        ``stream_usage``: ``"always"`` sends the final usage chunk on every stream
        (OpenAI's format, ``choices: []``); ``"requested"`` only when the request
        has ``stream_options.include_usage``.
        """
        if stream_usage not in ("always", "requested"):
            raise ValueError("stream_usage must be 'always' or 'requested'")
        self.model_ids = list(model_ids or [DEFAULT_MODEL_ID])
        self.latency = latency
        self.default_text = default_text
        self.default_chunks = default_chunks
        self.default_chunk_delay = default_chunk_delay
        self.stream_usage = stream_usage
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[Reply] = deque()
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._default_fn: Callable[[dict[str, Any]], Reply] | None = None

    # ---- scripting ------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> ScriptedModel:
        with self._lock:
            self._queue.extend(replies)
        return self

    def text(
        self,
        content: str | None = None,
        *,
        chunks: int = 3,
        finish_reason: str = "stop",
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        usage: dict[str, int] | None = None,
    ) -> ScriptedModel:
        """Plain assistant text split into ``chunks`` stream chunks (None = echo)."""
        return self.enqueue(
            Reply(
                kind="text",
                content=content,
                chunks=chunks,
                finish_reason=finish_reason,
                delay=delay,
                chunk_delay=chunk_delay,
                usage=usage,
            )
        )

    def tool_calls(
        self,
        calls: list[dict[str, Any]],
        *,
        content: str | None = None,
        chunks: int = 3,
        finish_reason: str = "tool_calls",
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        usage: dict[str, int] | None = None,
    ) -> ScriptedModel:
        """One or several (parallel) tool calls.

        ``calls``: ``[{"name": ..., "arguments": "<json string>" (or a dict), "id"?: ...}]``.
        Ids default to ``call_<24 hex>``. In a stream, each call's arguments are
        split into ``chunks`` fragments, each delta carrying the call's ``index``.
        ``content``: optional text the model says before calling the tools.
        """
        return self.enqueue(
            Reply(
                kind="tool_calls",
                content=content,
                tool_calls=_normalise_calls(calls),
                chunks=chunks,
                finish_reason=finish_reason,
                delay=delay,
                chunk_delay=chunk_delay,
                usage=usage,
            )
        )

    def stall(
        self,
        seconds: float,
        content: str | None = None,
        *,
        chunks: int = 3,
        chunk_delay: float = 0.0,
    ) -> ScriptedModel:
        """Sleep ``seconds`` before answering (with ``content``, default echo)."""
        return self.text(content, chunks=chunks, delay=seconds, chunk_delay=chunk_delay)

    def fail(
        self,
        status: int = 500,
        message: str = "scripted failure",
        *,
        error_type: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> ScriptedModel:
        """Answer with an OpenAI error envelope ``{"error": {...}}`` and ``status``."""
        return self.enqueue(
            Reply(
                kind="fail",
                status=status,
                message=message,
                error_type=error_type,
                error_code=code,
                headers=dict(headers or {}),
                delay=delay,
            )
        )

    def fail_midstream(
        self,
        after_chunks: int = 1,
        *,
        content: str = "This answer will be cut off before it is complete.",
        chunks: int = 5,
        mode: str = "abort",
        message: str = "scripted mid-stream failure",
        delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> ScriptedModel:
        """Start answering, then break after ``after_chunks`` content chunks.

        ``mode="abort"`` drops the connection without finishing the HTTP body
        (non-streaming requests get a truncated body). ``mode="error_event"``
        sends ``data: {"error": {...}}`` and ends the stream instead.
        """
        return self.enqueue(
            Reply(
                kind="fail_midstream",
                content=content,
                chunks=chunks,
                after_chunks=after_chunks,
                midstream_mode=mode,
                message=message,
                delay=delay,
                chunk_delay=chunk_delay,
            )
        )

    def malformed_tool_json(
        self,
        name: str = "lookup",
        arguments: str = '{"query": "unterminated',
        *,
        chunks: int = 3,
    ) -> ScriptedModel:
        """A tool call whose ``arguments`` string is not valid JSON."""
        return self.tool_calls([{"name": name, "arguments": arguments}], chunks=chunks)

    def text_tool_call(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        *,
        wrap: str | None = None,
        chunks: int = 3,
    ) -> ScriptedModel:
        """The model writes a tool call as plain JSON *text* (like many local models).

        Content is ``{"name": ..., "arguments": {...}}``; ``wrap="fenced"`` puts it in a
        ```json fence, ``wrap="hermes"`` in ``<tool_call>...</tool_call>``.
        """
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        payload = json.dumps({"name": name, "arguments": arguments})
        if wrap == "fenced":
            payload = f"```json\n{payload}\n```"
        elif wrap == "hermes":
            payload = f"<tool_call>\n{payload}\n</tool_call>"
        elif wrap is not None:
            raise ValueError("wrap must be None, 'fenced' or 'hermes'")
        return self.text(payload, chunks=chunks)

    def set_default(self, fn: Callable[[dict[str, Any]], Reply] | None) -> None:
        """Replace the echo default with ``fn(request_body) -> Reply`` (None restores)."""
        with self._lock:
            self._default_fn = fn

    def reset(self) -> None:
        """Drop queued replies and recorded requests (settings are kept)."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._headers.clear()
            self._default_fn = None

    # ---- inspection -----------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot (deep copy) of every request body received, oldest first."""
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        with self._lock:
            return copy.deepcopy(self._headers)

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._requests[-1]) if self._requests else None

    @property
    def pending(self) -> int:
        """Number of queued replies not consumed yet."""
        with self._lock:
            return len(self._queue)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` requests were received; return the snapshot."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"got {len(self._requests)} model requests, wanted {n}")
                self._cond.wait(left)
            return copy.deepcopy(self._requests)

    # ---- used by the server ---------------------------------------------------------

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._cond:
            self._requests.append(copy.deepcopy(body))
            self._headers.append(headers)
            self._cond.notify_all()
            if self._queue:
                return self._queue.popleft()
            default_fn = self._default_fn
        if default_fn is not None:
            return default_fn(body)
        content = self.default_text
        if content is None:
            content = "You said: " + _last_user_text(body.get("messages") or [])
        return Reply(
            kind="text",
            content=content,
            chunks=self.default_chunks,
            chunk_delay=self.default_chunk_delay,
            finish_reason="stop",
        )


# --------------------------------------------------------------------------- helpers


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "".join(parts)
    return str(content)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def _count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def _prompt_tokens(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        total += 3 + _count_tokens(_content_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            total += _count_tokens(str(fn.get("name", ""))) + _count_tokens(
                str(fn.get("arguments", ""))
            )
    if body.get("tools"):
        total += _count_tokens(json.dumps(body["tools"]))
    return max(total, 1)


def _split(text: str, n: int) -> list[str]:
    """Split ``text`` into ``n`` (or fewer, never empty unless text is) contiguous pieces."""
    if not text:
        return [""]
    n = max(1, min(n, len(text)))
    size, rem = divmod(len(text), n)
    pieces, pos = [], 0
    for i in range(n):
        step = size + (1 if i < rem else 0)
        pieces.append(text[pos : pos + step])
        pos += step
    return pieces


def _usage(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
    prompt = _prompt_tokens(body)
    completion_text = reply.content or ""
    for call in reply.tool_calls:
        completion_text += " " + call["name"] + " " + call["arguments"]
    completion = max(_count_tokens(completion_text), 1)
    if reply.usage:
        prompt = reply.usage.get("prompt_tokens", prompt)
        completion = reply.usage.get("completion_tokens", completion)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _error_body(reply: Reply) -> dict[str, Any]:
    etype, ecode = _ERROR_TYPES.get(reply.status, ("server_error", None))
    return {
        "error": {
            "message": reply.message,
            "type": reply.error_type or etype,
            "param": None,
            "code": reply.error_code or ecode,
        }
    }


class _AbortConnection(Exception):
    """Raised inside a response body to make uvicorn drop the connection."""


class _QuietAbortFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            # CancelledError: requests still in flight when the server is stopped.
            if isinstance(exc, _AbortConnection | asyncio.CancelledError):
                return False
            if isinstance(exc, BaseExceptionGroup):
                return not any(isinstance(e, _AbortConnection) for e in exc.exceptions)
            exc = exc.__cause__ or exc.__context__
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietAbortFilter) for f in logger.filters):
        logger.addFilter(_QuietAbortFilter())


# --------------------------------------------------------------------------- the app


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def create_app(model: ScriptedModel) -> Starlette:
    """Build the ASGI app serving ``model``."""

    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except Exception as exc:  # anything unparsable is a 400
            return JSONResponse(
                {
                    "error": {
                        "message": f"invalid JSON body: {exc}",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                status_code=400,
            )
        reply = model._next(body, dict(request.headers))
        delay = model.latency + reply.delay
        if delay > 0 and await _client_left_during(request, delay):
            return Response(status_code=499)  # nobody is listening any more

        if reply.kind == "fail":
            return JSONResponse(_error_body(reply), status_code=reply.status, headers=reply.headers)

        if reply.content is None and reply.kind == "text":
            reply = dataclasses.replace(
                reply, content="You said: " + _last_user_text(body.get("messages") or [])
            )

        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        model_name = str(body.get("model") or model.model_ids[0])
        usage = _usage(reply, body)

        if body.get("stream"):
            stream_options = body.get("stream_options") or {}
            usage_requested = bool(stream_options.get("include_usage"))
            return StreamingResponse(
                _stream(
                    reply,
                    completion_id,
                    created,
                    model_name,
                    usage,
                    usage_requested,
                    model.stream_usage == "always" or usage_requested,
                ),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-request-id": completion_id},
            )

        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        finish_reason = reply.finish_reason or "stop"
        if reply.kind == "tool_calls":
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
                for call in reply.tool_calls
            ]
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model_name,
            "system_fingerprint": "fp_scripted",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": usage,
        }
        if reply.kind == "fail_midstream":
            raw = json.dumps(payload).encode()
            return StreamingResponse(
                _truncated_body(raw, reply.after_chunks, reply.chunks),
                media_type="application/json",
                headers={"content-length": str(len(raw))},
            )
        return JSONResponse(payload)

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": mid, "object": "model", "created": 0, "owned_by": "scripted"}
                    for mid in model.model_ids
                ],
            }
        )

    async def control_replies(request: Request) -> Response:
        data = await request.json()
        items = data if isinstance(data, list) else [data]
        try:
            replies = [Reply.from_dict(item) for item in items]
            for r in replies:
                if r.kind == "tool_calls":
                    r.tool_calls = _normalise_calls(r.tool_calls)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        model.enqueue(*replies)
        return JSONResponse({"queued": len(replies), "pending": model.pending})

    async def control_requests(request: Request) -> Response:
        return JSONResponse({"requests": model.requests, "pending": model.pending})

    async def control_reset(request: Request) -> Response:
        model.reset()
        return JSONResponse({"ok": True})

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/_scripted/replies", control_replies, methods=["POST"]),
        Route("/_scripted/requests", control_requests, methods=["GET"]),
        Route("/_scripted/reset", control_reset, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def _client_left_during(request: Request, seconds: float) -> bool:
    """Sleep ``seconds``; return True early if the client disconnects meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            message = await asyncio.wait_for(request.receive(), left)
        except TimeoutError:
            return False
        if message.get("type") == "http.disconnect":
            return True


async def _truncated_body(raw: bytes, after_chunks: int, chunks: int) -> AsyncIterator[bytes]:
    cut = max(1, min(len(raw) - 1, len(raw) * max(after_chunks, 0) // max(chunks, 1)))
    yield raw[:cut]
    await asyncio.sleep(0)
    raise _AbortConnection("scripted abort of a non-streaming response")


async def _stream(
    reply: Reply,
    completion_id: str,
    created: int,
    model_name: str,
    usage: dict[str, int],
    usage_requested: bool,
    send_usage: bool,
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "system_fingerprint": "fp_scripted",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if usage_requested:
            obj["usage"] = None
        return obj

    events: list[dict[str, Any]] = []
    content_pieces = _split(reply.content or "", reply.chunks) if reply.content else []
    if reply.kind == "tool_calls":
        events.append(chunk({"role": "assistant", "content": reply.content, "refusal": None}))
        for index, call in enumerate(reply.tool_calls):
            fragments = _split(call["arguments"], reply.chunks)
            header = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            events.append(chunk({"tool_calls": [header]}))
            for fragment in fragments:
                if fragment:
                    events.append(
                        chunk(
                            {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                        )
                    )
    else:
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in content_pieces:
            events.append(chunk({"content": piece}))
    events.append(chunk({}, reply.finish_reason or "stop"))

    first = True
    content_sent = 0
    for event in events:
        if not first and reply.chunk_delay > 0:
            await asyncio.sleep(reply.chunk_delay)
        first = False
        delta = event["choices"][0]["delta"]
        is_content = bool(delta.get("content")) or bool(delta.get("tool_calls"))
        if reply.kind == "fail_midstream" and (
            content_sent >= reply.after_chunks or event["choices"][0]["finish_reason"]
        ):
            if reply.midstream_mode == "error_event":
                yield _sse(
                    {
                        "error": {
                            "message": reply.message,
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    }
                )
                return
            # Let the client read what was sent so far, then drop the connection.
            await asyncio.sleep(0.01)
            raise _AbortConnection("scripted mid-stream abort")
        yield _sse(event)
        if is_content:
            content_sent += 1

    if send_usage:
        yield _sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_name,
                "system_fingerprint": "fp_scripted",
                "choices": [],
                "usage": usage,
            }
        )
    yield b"data: [DONE]\n\n"


# --------------------------------------------------------------------------- running it


def _bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this. uvloop does not set it on connections of a server
    # built from a ready socket, and Nagle plus the client's delayed ACK then adds 40 ms
    # to every keep-alive response written in two parts (headers, then body).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ScriptedModelServer:
    """Runs a :class:`ScriptedModel` with uvicorn in a daemon thread on loopback."""

    def __init__(self, model: ScriptedModel | None = None, *, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.model = model or ScriptedModel()
        self.host = host
        self._sock = _bind_loopback(host, 0)
        self.port: int = self._sock.getsockname()[1]
        _install_log_filter()
        config = uvicorn.Config(
            create_app(self.model),
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> ScriptedModelServer:
        def run() -> None:
            asyncio.run(self._server.serve(sockets=[self._sock]))

        self._thread = threading.Thread(target=run, name=f"scripted-model-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("scripted model server thread died during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("scripted model server did not start in time")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_scripted_model(
    model: ScriptedModel | None = None, **model_kwargs: Any
) -> tuple[ScriptedModel, str, Callable[[], None]]:
    """Start a server in a daemon thread; return ``(model, base_url, stop)``.

    ``base_url`` ends in ``/v1`` (use it as ``api_base`` / ``MODEL_BASE_URL``).
    """
    if model is None:
        model = ScriptedModel(**model_kwargs)
    elif model_kwargs:
        raise TypeError("pass either a ScriptedModel or its keyword arguments, not both")
    server = ScriptedModelServer(model).start()
    return server.model, server.base_url, server.stop


@contextlib.contextmanager
def running_scripted_model(**model_kwargs: Any) -> Iterator[tuple[ScriptedModel, str]]:
    """``with running_scripted_model() as (model, base_url): ...``"""
    model, base_url, stop = start_scripted_model(**model_kwargs)
    try:
        yield model, base_url
    finally:
        stop()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible chat model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011, help="0 picks a free port")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before the first byte of each reply"
    )
    parser.add_argument(
        "--chunk-delay-ms", type=float, default=0.0, help="delay between stream chunks"
    )
    parser.add_argument("--chunks", type=int, default=3, help="stream chunks per default reply")
    parser.add_argument("--reply", default=None, help="fixed default reply (default: echo)")
    parser.add_argument("--model-id", action="append", default=None, help="ids for /v1/models")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    model = ScriptedModel(
        model_ids=args.model_id,
        latency=args.latency_ms / 1000.0,
        default_text=args.reply,
        default_chunks=args.chunks,
        default_chunk_delay=args.chunk_delay_ms / 1000.0,
    )
    sock = _bind_loopback(args.host, args.port)
    port = sock.getsockname()[1]
    _install_log_filter()
    config = uvicorn.Config(
        create_app(model),
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    print(f"scripted-model listening on http://{args.host}:{port}/v1", flush=True)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
