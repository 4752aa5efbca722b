"""Assistants API v1 on top of the v2 server: `OpenAI-Beta: assistants=v1` requests.

A pure-ASGI middleware. Without the v1 header a request passes through untouched, so
the v2 code knows nothing of v1. With it, request bodies are rewritten to v2
(`shapes`), v2 answers (JSON and server-sent events) are rewritten to v1 shapes as they
are sent (`responders`, `rewrite`), and the v1-only endpoints are served from the v2 API
(`handlers`). See docs/v1-compat.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import APIError
from server.v1compat import handlers, shapes
from server.v1compat.inner import Inner, Reply
from server.v1compat.responders import V1Send
from server.v1compat.rewrite import encode, reply_to_v1, with_length

__all__ = ["V1Compat"]

Rewrite = Callable[[shapes.JSON], shapes.JSON]


def _route(method: str, template: str) -> tuple[str, re.Pattern[str]]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return method, re.compile(f"{pattern}/?")


OWN: list[tuple[tuple[str, re.Pattern[str]], handlers.Handler]] = [
    (_route("POST", "/v1/assistants/{assistant_id}"), handlers.update_assistant),
    (_route("DELETE", "/v1/assistants/{assistant_id}"), handlers.delete_assistant),
    (_route("POST", "/v1/assistants/{assistant_id}/files"), handlers.create_assistant_file),
    (_route("GET", "/v1/assistants/{assistant_id}/files"), handlers.list_assistant_files),
    (_route("GET", "/v1/assistants/{assistant_id}/files/{file_id}"), handlers.get_assistant_file),
    (
        _route("DELETE", "/v1/assistants/{assistant_id}/files/{file_id}"),
        handlers.delete_assistant_file,
    ),
    (
        _route("GET", "/v1/threads/{thread_id}/messages/{message_id}/files"),
        handlers.list_message_files,
    ),
    (
        _route("GET", "/v1/threads/{thread_id}/messages/{message_id}/files/{file_id}"),
        handlers.get_message_file,
    ),
]
REWRITES: list[tuple[tuple[str, re.Pattern[str]], Rewrite]] = [
    (_route("POST", "/v1/assistants"), shapes.assistant_create_to_v2),
    (_route("POST", "/v1/threads"), shapes.thread_create_to_v2),
    (_route("POST", "/v1/threads/runs"), shapes.thread_and_run_to_v2),
    (_route("POST", "/v1/threads/{thread_id}/messages"), shapes.message_to_v2),
    (_route("POST", "/v1/threads/{thread_id}/runs"), shapes.run_create_to_v2),
]


def wants_v1(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name.lower() == b"openai-beta":
            parts = value.replace(b" ", b"").lower().split(b",")
            if b"assistants=v1" in parts:
                return True
    return False


def _find(table: list[Any], method: str, path: str) -> tuple[Any, dict[str, str]] | None:
    for (route_method, pattern), target in table:
        if route_method == method and (match := pattern.fullmatch(path)):
            return target, match.groupdict()
    return None


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class V1Compat:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_v1(scope):
            await self.app(scope, receive, send)
            return
        inner = Inner(self.app, scope)
        method, path = scope["method"], scope["path"]
        own = _find(OWN, method, path)
        if own is not None:
            handler, ids = own
            query = dict(parse_qsl(scope.get("query_string", b"").decode()))
            try:
                reply = await handler(inner, ids, query, await read_body(receive))
            except handlers.Failed as failed:
                reply = failed.reply
            except APIError as err:
                reply = Reply(err.status, err.body())
            await self.send_json(
                send, reply.status, await reply_to_v1(inner, reply.status, reply.body)
            )
            return
        body: bytes | None = None
        rewrite = _find(REWRITES, method, path)
        if rewrite is not None:
            body = await read_body(receive)
            try:
                data = json.loads(body)
            except ValueError:
                data = None  # v2 answers the malformed body itself
            if isinstance(data, dict):
                body = encode(rewrite[0](data))
        await self.forward(scope, receive, send, body, inner)

    @staticmethod
    async def send_json(send: Send, status: int, body: Any) -> None:
        payload = encode(body)
        headers = [(b"content-type", b"application/json")]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": with_length(headers, len(payload)),
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, body: bytes | None, inner: Inner
    ) -> None:
        """Run the v2 app; its answer is rewritten as it is sent (responders.py): JSON
        whole, an event stream event by event."""
        downstream_receive = receive
        if body is not None:
            scope = {**scope, "headers": with_length(scope["headers"], len(body))}
            pending = True

            async def replay() -> Message:
                nonlocal pending
                if pending:
                    pending = False
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            downstream_receive = replay
        await self.app(scope, downstream_receive, V1Send(send, inner))
