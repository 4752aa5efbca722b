"""Calls to the v2 API from inside the process, as the v1 caller.

The compatibility layer reaches storage only through the v2 endpoints, with the caller's
own headers: project scoping, validation and error envelopes stay the v2 code's, and
none of it is duplicated here.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message, Scope

from server.v1compat.shapes import assistant_file_ids

# Headers that describe the original body or API version, not the caller.
_DROPPED = {b"content-length", b"content-type", b"openai-beta", b"transfer-encoding"}


class Reply:
    """A finished JSON answer: status and decoded body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Inner:
    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = dict(scope)
        self.headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _DROPPED]
        self._assistant_files: dict[str, list[str]] = {}

    async def call(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Reply:
        data = b"" if body is None else json.dumps(body).encode()
        headers = [
            *self.headers,
            (b"openai-beta", b"assistants=v2"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
        ]
        scope = {
            **self.scope,
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(query or {}).encode(),
            "headers": headers,
        }
        done = asyncio.Event()
        sent = False
        status = 500
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        done.set()
        raw = b"".join(chunks)
        return Reply(status, json.loads(raw) if raw else None)

    async def assistant_file_ids(self, assistant_id: str) -> list[str]:
        """The v1 `file_ids` a run reports: its assistant's, looked up once per request."""
        if assistant_id not in self._assistant_files:
            reply = await self.call("GET", f"/v1/assistants/{assistant_id}")
            ids = assistant_file_ids(reply.body) if reply.ok else []
            self._assistant_files[assistant_id] = ids
        return self._assistant_files[assistant_id]
