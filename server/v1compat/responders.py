"""Rewriting the v2 app's answer to a v1 request as it is sent: one responder per kind of
answer, chosen by the answer's content type when its headers go out."""

from __future__ import annotations

import json

from starlette.types import Message, Send

from server.v1compat.inner import Inner
from server.v1compat.rewrite import encode, event_to_v1, reply_to_v1, with_length


class Responder:
    """Passes the answer through unchanged (files, empty bodies, anything not JSON)."""

    def __init__(self, send: Send) -> None:
        self.send = send

    async def start(self, message: Message) -> None:
        await self.send(message)

    async def body(self, message: Message) -> None:
        await self.send(message)


class JSONResponder(Responder):
    """Holds the headers and body back, then sends the whole body rewritten (with its
    new Content-Length)."""

    def __init__(self, send: Send, inner: Inner) -> None:
        super().__init__(send)
        self.inner = inner
        self.head: Message = {}
        self.buffer = b""

    async def start(self, message: Message) -> None:
        self.head = message

    async def body(self, message: Message) -> None:
        self.buffer += message.get("body", b"")
        if message.get("more_body", False):
            return
        status = self.head["status"]
        data = json.loads(self.buffer) if self.buffer else None
        payload = encode(await reply_to_v1(self.inner, status, data))
        headers = with_length(list(self.head.get("headers", [])), len(payload))
        await self.send({**self.head, "headers": headers})
        await self.send({"type": "http.response.body", "body": payload})


class SSEResponder(Responder):
    """Rewrites the event stream event by event, as each one completes."""

    def __init__(self, send: Send, inner: Inner) -> None:
        super().__init__(send)
        self.inner = inner
        self.buffer = b""

    async def body(self, message: Message) -> None:
        self.buffer += message.get("body", b"")
        more = bool(message.get("more_body", False))
        events = []
        while b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            events.append(await event_to_v1(self.inner, event) + b"\n\n")
        if not more:
            events.append(self.buffer)
            self.buffer = b""
        await self.send({"type": "http.response.body", "body": b"".join(events), "more_body": more})


def content_type(message: Message) -> bytes:
    for name, value in message.get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value)
    return b""


class V1Send:
    """The `send` the v2 app gets: picks the responder when the answer starts."""

    def __init__(self, send: Send, inner: Inner) -> None:
        self.outer = send
        self.inner = inner
        self.responder = Responder(send)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            kind = content_type(message)
            if kind.startswith(b"application/json"):
                self.responder = JSONResponder(self.outer, self.inner)
            elif kind.startswith(b"text/event-stream"):
                self.responder = SSEResponder(self.outer, self.inner)
            else:
                self.responder = Responder(self.outer)
            await self.responder.start(message)
        elif message["type"] == "http.response.body":
            await self.responder.body(message)
        else:
            await self.outer(message)
