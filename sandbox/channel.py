"""The server's end of a session's control channel: signed lines over Docker's attach
stream, read with hard bounds.

Docker multiplexes the container's stdout and stderr on one socket as frames (8-byte
header: stream, 3 zero bytes, big-endian length). The reader thread takes them apart in
chunks of at most 64 KiB, so a frame's claimed length never turns into an allocation.
Each stdout line must carry the right HMAC for the next reply number (sandbox/kernel.py
signs them); a line that is too long, badly signed or not a JSON object closes the
channel at once. Only verified replies are queued, and the kernel sends one per request,
so the queue stays short. Whatever reaches the socket, the server spends at most one
reply's bytes of memory and the CPU to hash them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from sandbox.config import fmt_bytes
from sandbox.kernel import sign, verify

log = logging.getLogger("assistd.sandbox")

MAX_REPLY_BYTES = 1024 * 1024  # the kernel's replies stay far below (logs are 64 KiB)
MAX_STDERR_BYTES = 64 * 1024  # the supervisor writes there only if it crashes
CHUNK = 64 * 1024
STDOUT, STDERR = 1, 2


class ChannelClosed(Exception):
    """The channel is gone; `reason` says why (None: the container ended)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason or "the sandbox kernel exited")
        self.reason = reason


def tampered(what: str) -> str:
    return (
        f"The sandbox session was ended because its control channel received {what}, which "
        "the kernel did not send (user code wrote to it): its variables and files are gone."
    )


class ReplyReader:
    """Reads one container's attach stream in a daemon thread; `get` returns verified
    replies in order. `recv` is the socket's recv; `key` the session's secret."""

    def __init__(
        self,
        recv: Callable[[int], bytes],
        key: bytes,
        max_line: int = MAX_REPLY_BYTES,
        max_stderr: int = MAX_STDERR_BYTES,
    ) -> None:
        self._recv = recv
        self._key = key
        self.max_line = max_line
        self.max_stderr = max_stderr
        self._replies: queue.Queue[dict[str, Any] | ChannelClosed] = queue.Queue()
        self._seq = 0
        self.closed: ChannelClosed | None = None

    def start(self) -> ReplyReader:
        threading.Thread(target=self.run, daemon=True, name="sandbox-reader").start()
        return self

    def get(self, timeout: float) -> dict[str, Any] | None:
        """The next reply; None on timeout; raises ChannelClosed once the channel is."""
        if self.closed is not None and self._replies.empty():
            raise self.closed
        try:
            item = self._replies.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, ChannelClosed):
            self._replies.put(item)  # every later call sees it too
            raise item
        return item

    def run(self) -> None:
        try:
            reason = self._frames()
        except OSError:
            reason = None
        self.closed = ChannelClosed(reason)
        self._replies.put(self.closed)

    def _exactly(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = self._recv(min(CHUNK, n - len(data)))
            if not chunk:
                return None
            data += chunk
        return data

    def _frames(self) -> str | None:
        """Read until the stream ends (None) or breaks a rule (the reason, for the model)."""
        line = bytearray()
        stderr = 0
        while (header := self._exactly(8)) is not None:
            stream, left = header[0], int.from_bytes(header[4:8], "big")
            while left:
                chunk = self._recv(min(CHUNK, left))
                if not chunk:
                    return None
                left -= len(chunk)
                if stream != STDOUT:
                    stderr += len(chunk)
                    if stderr > self.max_stderr:
                        return tampered(f"more than {fmt_bytes(self.max_stderr)} on stderr")
                    log.debug("sandbox stderr: %r", chunk[:500])
                    continue
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    line += chunk[start:end]
                    start = end + 1
                    if problem := self._accept(bytes(line)):
                        return problem
                    line.clear()
                line += chunk[start:]
                if len(line) > self.max_line:
                    return tampered(f"a reply over {fmt_bytes(self.max_line)}")
        return None

    def _accept(self, line: bytes) -> str | None:
        if len(line) > self.max_line:
            return tampered(f"a reply over {fmt_bytes(self.max_line)}")
        payload = verify(self._key, b"r", self._seq, line)
        if payload is None:
            return tampered("a line with a wrong signature")
        try:
            reply = json.loads(payload)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            return tampered("a reply that is not a JSON object")
        self._seq += 1
        self._replies.put(reply)
        return None


class RequestWriter:
    """Signs requests with the session's key and numbers them as the kernel expects."""

    def __init__(self, send: Callable[[bytes], Any], key: bytes) -> None:
        self._send = send
        self._key = key
        self._seq = 1  # 0 was the key itself

    def handshake(self) -> None:
        self._send(json.dumps({"key": self._key.hex()}).encode() + b"\n")

    def send(self, payload: dict[str, Any]) -> None:
        # The leading newline ends any partial line someone else wrote to the kernel's
        # stdin (gVisor lets user code open it), so that junk cannot swallow a request.
        self._send(b"\n" + sign(self._key, b"q", self._seq, json.dumps(payload).encode()))
        self._seq += 1
