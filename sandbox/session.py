"""One sandbox session: a container, its volume, and the kernel's control channel.

Requests to the kernel are serialised by a lock. Files never travel on the channel:
`provide` streams an input in with `put_archive`, `fetch` streams an output out with
`get_archive` (sandbox/transfer.py). Everything here blocks.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from docker.errors import DockerException, NotFound

from sandbox.channel import ChannelClosed, ReplyReader, RequestWriter
from sandbox.config import (
    WORK_DIR,
    ExecResult,
    Input,
    Output,
    SandboxConfig,
    SandboxUnavailable,
    fmt_bytes,
)
from sandbox.limits import input_refused
from sandbox.transfer import TransferError, check_stat, input_archive, member_stream

log = logging.getLogger("assistd.sandbox")

ROOT = "/mnt"  # the volume's mount point; WORK_DIR is its data/ directory
MAX_CODE_BYTES = 4 * 1024 * 1024
INTERRUPT_WAIT = 5.0  # the kernel kills code that ignores SIGINT after 2 s


class Session:
    def __init__(self, container: Any, volume: Any, sock: Any, owner: str) -> None:
        self.key: str | None = None
        self.container = container
        self.volume = volume
        self.name: str = getattr(volume, "name", "") or ""  # the container's name too
        self.owner = owner
        self._sock = sock
        raw = getattr(sock, "_sock", sock)
        secret = secrets.token_bytes(32)
        self._reader = ReplyReader(raw.recv, secret).start()
        self._writer = RequestWriter(raw.sendall, secret)
        self._lock = threading.Lock()
        self._closed = False
        self.last_used = time.monotonic()
        self.files: dict[str, str] = {}  # file_id -> name under /mnt/data, already there
        self.refused: set[str] = set()  # file ids refused once (the model was told)

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def dead(self) -> bool:
        """Closed, or its channel is gone (the container died, or broke a rule)."""
        return self._closed or self._reader.closed is not None

    def handshake(self, timeout: float) -> None:
        """Send the channel's secret (the kernel's first line) and wait for `ready`."""
        try:
            self._writer.handshake()
            reply = self._reader.get(timeout)
        except (ChannelClosed, OSError):
            reply = None
        if not reply or not reply.get("ready"):
            raise SandboxUnavailable(f"sandbox kernel did not start: {self.exit_reason()}")

    def _request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request and its reply (the caller holds the lock)."""
        self.last_used = time.monotonic()
        self._writer.send(payload)
        reply = self._reader.get(timeout)
        if reply is None:
            raise TimeoutError(f"sandbox did not answer {payload['op']} in {timeout:g} s")
        if not reply.get("ok"):
            raise RuntimeError(str(reply.get("error") or "sandbox error"))
        return reply

    # -- code ------------------------------------------------------------------------

    def execute(self, code: str, timeout: float) -> ExecResult:
        if len(code.encode("utf-8", "replace")) > MAX_CODE_BYTES:
            return ExecResult(logs="", error=f"The code is over {fmt_bytes(MAX_CODE_BYTES)}.")
        with self._lock:
            try:
                self._writer.send({"op": "exec", "code": code})
                reply = self._reader.get(timeout)
                if reply is None:
                    return self._interrupt_overdue(timeout)
            except ChannelClosed as exc:
                return self._ended(exc)
            except OSError:
                return self._ended(ChannelClosed(None))
            finally:
                self.last_used = time.monotonic()
        if not reply.get("ok"):
            return ExecResult(logs="", error=str(reply.get("error")))
        return self._result(reply)

    def _result(self, reply: dict[str, Any], timed_out: bool = False) -> ExecResult:
        def outputs(key: str) -> list[Output]:
            items = reply.get(key) or []
            return [Output(str(p), int(s)) for p, s in items if str(p).startswith(ROOT + "/")]

        files = outputs("files")
        restarted = reply.get("restarted")
        error = reply.get("error")
        if restarted:
            error = f"{error}\n{restarted}" if error else str(restarted)
        return ExecResult(
            logs=str(reply.get("logs") or ""),
            error=error,
            figures=outputs("figures"),
            files=files,
            files_unlisted=max(0, int(reply.get("files_total") or 0) - len(files)),
            notes=[str(n) for n in reply.get("notes") or []],
            timed_out=timed_out,
            restarted=bool(restarted),
        )

    def _interrupt_overdue(self, timeout: float) -> ExecResult:
        """SIGINT the kernel, which interrupts the code (variables survive) or restarts
        its Python process; end the session if even that gets no answer."""
        message = f"Execution timed out after {timeout:g} seconds and was interrupted."
        try:
            self.container.kill(signal="SIGINT")
            reply = self._reader.get(INTERRUPT_WAIT)
        except (DockerException, ChannelClosed):
            reply = None
        if reply is not None and reply.get("ok"):
            result = self._result(reply, timed_out=True)
            result.error = message + (f"\n{result.error}" if result.restarted else "")
            return result
        self.close()
        message += " The session did not respond and was restarted: its variables are gone."
        return ExecResult(logs="", error=message, timed_out=True, restarted=True)

    def _ended(self, closed: ChannelClosed) -> ExecResult:
        reason = closed.reason or self.exit_reason()
        self.close()
        return ExecResult(logs="", error=reason, restarted=True)

    def interrupt(self) -> None:
        """Interrupt a running execution (a cancelled run)."""
        with contextlib.suppress(DockerException):
            self.container.kill(signal="SIGINT")

    def end_reason(self) -> str:
        closed = self._reader.closed
        if closed is not None and closed.reason:
            return "its control channel received data the kernel did not send"
        return "its container stopped"

    def exit_reason(self) -> str:
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
        except DockerException:
            return "The sandbox session ended unexpectedly; its variables are gone."
        if state.get("OOMKilled"):
            return "The sandbox ran out of memory and was restarted; its variables are gone."
        return (
            f"The sandbox process exited (code {state.get('ExitCode')}) and was restarted; "
            "its variables are gone."
        )

    # -- files -----------------------------------------------------------------------

    def provide(self, item: Input, cfg: SandboxConfig) -> str | None:
        """Make sure /mnt/data/<name> holds the input; a note for the logs when it cannot
        (given once per session: the model knows from then on)."""
        if self.files.get(item.file_id) == item.name or item.file_id in self.refused:
            return None
        note = input_refused(item, cfg)
        if note is None:
            try:
                self._put(item)
                self.files[item.file_id] = item.name
                return None
            except TransferError as exc:
                note = f"{WORK_DIR}/{item.name} could not be copied into the sandbox: {exc}"
        self.refused.add(item.file_id)
        return note

    def _put(self, item: Input) -> None:
        staging = ".in-" + secrets.token_hex(16)
        with self._lock:
            try:
                archive = input_archive(staging, item.name, item.path, item.size)
                if not self.container.put_archive(ROOT, archive):
                    raise TransferError("Docker refused the archive")
                reply = self._request({"op": "adopt", "staging": staging, "name": item.name}, 30)
            except (DockerException, OSError, RuntimeError, TimeoutError, ChannelClosed) as exc:
                with contextlib.suppress(Exception):
                    self._request({"op": "discard", "staging": staging}, 10)
                raise TransferError(_why(exc)) from exc
        if int(reply.get("size", -1)) != item.size:
            raise TransferError("it arrived incomplete")

    @contextlib.contextmanager
    def fetch(self, path: str, max_bytes: int) -> Iterator[BinaryIO]:
        """A stream of an output file's bytes, straight from Docker (nothing buffered);
        TransferError when it is not a regular file of at most `max_bytes`."""
        if not path.startswith(ROOT + "/") or "/../" in path or path.endswith("/.."):
            raise TransferError("it is outside /mnt")
        try:
            chunks, stat = self.container.get_archive(path, chunk_size=256 * 1024)
        except (DockerException, OSError) as exc:
            raise TransferError(_why(exc)) from exc
        try:
            check_stat(stat, max_bytes)
            yield member_stream(chunks, max_bytes)
        except (OSError, tarfile.TarError, DockerException) as exc:  # the stream broke
            raise TransferError(_why(exc, disk="the server could not store it")) from exc
        finally:
            with contextlib.suppress(Exception):
                chunks.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(NotFound, DockerException):
            self.container.remove(force=True)
        if self.volume is not None:
            with contextlib.suppress(NotFound, DockerException):
                self.volume.remove(force=True)
        with contextlib.suppress(OSError):
            self._sock.close()


def _why(exc: BaseException, disk: str = "the session's disk is full") -> str:
    text = str(getattr(exc, "explanation", None) or exc or type(exc).__name__)
    return disk if "no space left" in text.lower() else text[:300]
