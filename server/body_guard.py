"""A pure-ASGI middleware that checks a request (URL, then body) before any route sees it.

- Size: a body past `ASSISTD_MAX_JSON_BYTES` is a 413 `request_too_large`. A declared
  Content-Length is checked before a byte is read; a chunked body is counted as it
  arrives and never held past the cap. Uploads (`POST /v1/files`) pass by: their route
  has its own cap (ASSISTD_MAX_FILE_BYTES) and spools to disk.
- Content: a POST body must be a JSON object that can be stored and read back. orjson,
  which reads our JSON columns, is the test: what it refuses but Python's json accepts
  (an unpaired surrogate such as `"\\udfff"`, NaN, Infinity, 1e400) is a 400 naming the
  param, in every string of every request, rather than a check per field; so is NUL
  (`"\\u0000"`), which PostgreSQL cannot store, and a NUL in the URL (`%00`). Nesting is
  capped too (pydantic cannot serialise a value nested a few hundred levels deep).
- An empty POST body reads as `{}`, so a missing field is named (`model`), not `None`.

Why here and not in the routes: FastAPI reads the whole body into memory before any
dependency runs, and a row stored with a lone surrogate breaks every later list.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import APIError, bad_request
from server.json_safety import find_unstorable

MAX_DEPTH = 64
# Past the cap, up to this much more is read and dropped before answering, so a client
# still sending gets the 413 instead of a reset connection; beyond it, we just answer.
DRAIN_BYTES = 16 * 1024 * 1024
# Bodies larger than this are checked in a worker thread, off the event loop.
INLINE_CHECK_BYTES = 64 * 1024
_JSON_TYPES = (b"application/json",)


def too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"The request body is too large: the limit is {limit} bytes (ASSISTD_MAX_JSON_BYTES).",
        code="request_too_large",
    )


def _is_upload(scope: Scope) -> bool:
    return bool(scope["method"] == "POST" and scope["path"].rstrip("/") == "/v1/files")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return True  # FastAPI parses a body without a content type as JSON
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime in _JSON_TYPES or mime.endswith(b"+json")


def _within_depth(node: Any, budget: int) -> bool:
    """Whether no container in `node` is nested past `budget` levels. Visits containers
    only (a 27 KB assistant with 20 tools: about 40 us, orjson's parse is 20 us)."""
    if budget == 0:
        return False
    for value in node.values() if type(node) is dict else node:
        kind = type(value)
        if (kind is dict or kind is list) and not _within_depth(value, budget - 1):
            return False
    return True


def check_json_body(body: bytes) -> APIError | None:
    """Why this JSON body cannot be accepted, or None. Invalid JSON is left to FastAPI,
    which answers it with the usual parse error."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(body)
        except RecursionError:
            return bad_request(f"The request body is nested too deeply (at most {MAX_DEPTH}).")
        except ValueError:
            return None
        return _unstorable(value)
    if not isinstance(value, dict):
        return bad_request("The request body must be a JSON object.", code="invalid_value")
    if b"\\u0000" in body:  # NUL: valid JSON, but no PostgreSQL text can hold it
        problem = _unstorable(value)
        if problem is not None:
            return problem
    deep = body.count(b"{") + body.count(b"[") > MAX_DEPTH  # else it cannot be too deep
    if deep and not _within_depth(value, MAX_DEPTH):
        return bad_request(f"The request body is nested too deeply (at most {MAX_DEPTH}).")
    return None


def _unstorable(value: Any) -> APIError | None:
    found = find_unstorable(value)
    if found is None:
        return None
    param, reason = found
    if reason == "non-finite number":
        message = f"Invalid value for '{param}': NaN and Infinity are not JSON numbers."
    else:
        message = (
            f"Invalid value for '{param or 'body'}': the string contains {reason}, which "
            "cannot be stored. Send well-formed UTF-8 text without NUL."
        )
    return bad_request(message, param or None, "invalid_value")


def check_url(scope: Scope) -> APIError | None:
    """A NUL in the path or query (`%00`) reaches the database as part of an id or a
    cursor, and PostgreSQL refuses it (a 500): no object has such an id."""
    if "\x00" in scope["path"]:
        return APIError(
            404, f"Invalid URL ({scope['method']} {scope['path'].replace(chr(0), '%00')})"
        )
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key or "\x00" in value:
                name = key.replace("\x00", "")
                return bad_request(
                    f"Invalid value for '{name}': it contains a NUL character.",
                    name or None,
                    "invalid_value",
                )
    return None


class BodyGuard:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad_url = check_url(scope)
        if bad_url is not None:
            await _reply(send, bad_url)
            return
        if _is_upload(scope):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Don't ask a client waiting on `Expect: 100-continue` for its body at all.
            if _header(scope, b"expect") is None and int(declared) <= limit + DRAIN_BYTES:
                await _drain(receive, limit + DRAIN_BYTES)
            await _reply(send, too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before its body arrived: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > limit:
                if more:
                    await _drain(receive, DRAIN_BYTES)
                await _reply(send, too_large(limit))
                return
            chunks.append(chunk)
        body = b"".join(chunks)
        if scope["method"] == "POST":
            if not body.strip():
                body = b"{}"
                scope = _with_json_headers(scope, body)
            else:
                problem = await self._check(scope, body)
                if problem is not None:
                    await _reply(send, problem)
                    return
        await self.app(scope, _replay(body, receive), send)

    async def _check(self, scope: Scope, body: bytes) -> APIError | None:
        content_type = _header(scope, b"content-type")
        if not _is_json(content_type):
            return _wrong_type(content_type or b"")
        if len(body) > INLINE_CHECK_BYTES:
            return await anyio.to_thread.run_sync(check_json_body, body)
        return check_json_body(body)


def _wrong_type(content_type: bytes) -> APIError:
    shown = content_type.decode("latin-1")[:100]
    return bad_request(  # the hosted API's wording
        f"Unsupported content type: '{shown}'. This API method only accepts "
        f"'application/json' requests, but you specified the header 'Content-Type: {shown}'. "
        "Please try again with a supported content type.",
    )


def _with_json_headers(scope: Scope, body: bytes) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"content-type")]
    headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {**scope, "headers": headers}


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the real channel (a streaming response listens on
    it for the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _drain(receive: Receive, budget: int) -> None:
    seen = 0
    while seen <= budget:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _reply(send: Send, err: APIError) -> None:
    body = json.dumps(err.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": err.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
