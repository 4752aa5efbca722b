"""The processes inside a sandbox container: a supervisor that holds the server's control
channel, and a worker that runs the user's code. Standard library only: the server starts
it as `python3 -c <this file's source> supervise`, so the image needs nothing of ours.

User code can use every file descriptor of its own process, so it never runs in the one
holding the channel. The supervisor is PID 1, alone holds the container's stdin/stdout,
and makes itself non-dumpable first (no /proc/1/fd, /proc/1/mem or ptrace for processes
without CAP_SYS_PTRACE). The worker is a fresh interpreter (fork + exec) with /dev/null
and a capture file as stdio and one socket to the supervisor (fd 3); what it sends is
untrusted and bounded. Each channel line carries an HMAC-SHA256 of a per-direction
counter and the payload, keyed by a secret the server sends as the first line, before
any user code exists. docs/security.md has the argument in full.

Requests (after `{"key": hex}`): exec {code}, adopt {staging, name} (move a file the
server streamed into /mnt/.in-<hex>/ to /mnt/data), discard {staging}, ping.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

ROOT = "/mnt"  # the session's volume: data/ for the user, .figures/, .in-*/ staging
WORK = "/mnt/data"
FIGURES = "/mnt/.figures"
STAGING = re.compile(r"\.in-[0-9a-f]{32}")
NAME = re.compile(r"[^/\0]{1,255}")
MAX_LOG_BYTES = 64 * 1024
MAX_ERROR_CHARS = 16 * 1024
MAX_SCANNED = 2000  # files under /mnt/data looked at per snapshot
MAX_LISTED = 100  # changed files (and figures) named in one reply
MAX_WORKER_LINE = 1024 * 1024
MAX_REQUEST_LINE = 16 * 1024 * 1024
REPLY_BUDGET = 768 * 1024  # the server ends a session whose reply passes 1 MiB
KILL_GRACE = 2.0  # seconds an interrupted execution gets before its process is killed
KEEP = "its variables are gone; files in /mnt/data are kept"


def sign(key: bytes, direction: bytes, seq: int, payload: bytes) -> bytes:
    """One control-channel line: MAC, space, payload, newline."""
    mac = hmac.new(key, direction + b"%d:" % seq + payload, hashlib.sha256).hexdigest()
    return mac.encode() + b" " + payload + b"\n"


def verify(key: bytes, direction: bytes, seq: int, line: bytes) -> bytes | None:
    """The payload of a line (without its newline) if its MAC is right, else None."""
    mac, sep, payload = line.partition(b" ")
    good = hmac.new(key, direction + b"%d:" % seq + payload, hashlib.sha256).hexdigest()
    return payload if sep and hmac.compare_digest(mac, good.encode()) else None


class Lines:
    """Newline-framed reading with a cap: a line longer than `limit` is dropped whole."""

    def __init__(self, read: Callable[[int], bytes], limit: int) -> None:
        self.read, self.limit = read, limit
        self.buffer = bytearray()
        self.skipping = False
        self.eof = False

    def pop(self) -> bytes | None:
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > self.limit:
                    self.buffer.clear()
                    self.skipping = True
                return None
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            if not self.skipping:
                return line
            self.skipping = False

    def fill(self) -> None:
        data = self.read(65536)
        self.eof = not data
        self.buffer += data

    def read_line(self) -> bytes | None:
        """The next line, blocking; None at end of input."""
        while (line := self.pop()) is None:
            if self.eof:
                return None
            self.fill()
        return line


def clean(text: Any, limit: int) -> str:
    """Text safe to store: at most `limit` characters, lone surrogates replaced."""
    return str(text)[:limit].encode("utf-8", "replace").decode("utf-8")


# -- the worker: runs user code ------------------------------------------------------

_namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}


def _run(code: str) -> None:
    """Execute like a notebook cell: the value of a final expression is printed."""
    tree = ast.parse(code, "<code>", "exec")
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    exec(compile(tree, "<code>", "exec"), _namespace)
    if last is not None:
        value = eval(compile(last, "<code>", "eval"), _namespace)
        if value is not None:
            print(repr(value))


def _save_figures(seq: int) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    os.makedirs(FIGURES, exist_ok=True)
    for n, num in enumerate(plt.get_fignums()):
        try:
            path = os.path.join(FIGURES, f"{seq:08d}-{n:04d}.png")
            plt.figure(num).savefig(path, format="png", bbox_inches="tight")
        except Exception:  # noqa: BLE001 - a broken figure must not kill the kernel
            traceback.print_exc()
    plt.close("all")


def _execute(capture: int, seq: int, code: str) -> dict[str, Any]:
    os.dup2(capture, 1)  # again each time: user code may have closed or moved them
    os.dup2(capture, 2)
    os.ftruncate(capture, 0)
    os.lseek(capture, 0, os.SEEK_SET)
    error = None
    try:
        _run(code)
        _save_figures(seq)
    except KeyboardInterrupt:
        error = "KeyboardInterrupt: execution interrupted"
    except BaseException:  # noqa: BLE001 - user code errors are outputs, SystemExit too
        kind, value, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_code.co_filename != "<code>":
            tb = tb.tb_next  # the kernel's own frames are noise to the model
        error = "".join(traceback.format_exception(kind, value, tb))
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    raw = os.pread(capture, MAX_LOG_BYTES + 1, 0)
    logs = raw[:MAX_LOG_BYTES].decode("utf-8", "replace")
    if len(raw) > MAX_LOG_BYTES:
        logs += "\n[output truncated]"
    return {"seq": seq, "logs": logs, "error": error and clean(error, MAX_ERROR_CHARS)}


def work() -> None:
    """The worker: read {"seq", "code"} lines from fd 3, answer each with one line."""
    channel = socket.socket(fileno=3)
    requests = Lines(channel.recv, MAX_REQUEST_LINE)
    capture_file = tempfile.TemporaryFile(dir="/tmp")  # noqa: SIM115 - lives as long as we do
    capture = capture_file.fileno()
    channel.sendall(b'{"seq": 0}\n')  # ready: the supervisor answers the server's key now
    while True:
        try:
            channel.setblocking(True)  # user code may have changed it
            line = requests.read_line()
            if line is None:
                return  # the supervisor is gone
            request = json.loads(line)
            seq, code = int(request["seq"]), str(request["code"])
        except KeyboardInterrupt:  # an interrupt that arrived between executions
            continue
        except (ValueError, KeyError, TypeError):
            continue
        try:
            reply = _execute(capture, seq, code)
        except KeyboardInterrupt:
            reply = {"seq": seq, "logs": "", "error": "KeyboardInterrupt: execution interrupted"}
        with contextlib.suppress(OSError, KeyboardInterrupt):
            channel.setblocking(True)  # the leading newline ends any partial line of junk
            channel.sendall(b"\n" + json.dumps(reply).encode() + b"\n")


# -- the supervisor: PID 1, the only holder of the control channel ---------------------


def _files(directory: str) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Regular files under `directory`: path -> (mtime_ns, size); notes on what was left."""
    seen: dict[str, tuple[int, int]] = {}
    skipped = 0
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            if len(seen) >= MAX_SCANNED:
                return seen, [
                    f"More than {MAX_SCANNED} files under {directory}: the rest were not checked."
                ]
            try:
                path.encode("utf-8")
                st = os.lstat(path)
            except UnicodeEncodeError:
                skipped += 1
                continue
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                seen[path] = (st.st_mtime_ns, st.st_size)
    return seen, [
        f"{skipped} files under {directory} have names that are not UTF-8: not returned."
    ] if skipped else []


def _oom_kills() -> int | None:  # the container's (cgroup v2 or v1), if readable
    for name in ("memory.events", "memory/memory.oom_control"):
        with contextlib.suppress(OSError, ValueError), open("/sys/fs/cgroup/" + name) as fh:
            for line in fh:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    return None


class Supervisor:
    def __init__(self, key: bytes, source: str) -> None:
        self.key, self.source = key, source
        self.sent = 0  # replies signed so far
        self.worker = 0  # pid, 0 when none runs
        self.status: int | None = None  # the worker's wait status once it ended
        self.channel: socket.socket | None = None
        self.lines: Lines | None = None
        self.seq = 0
        self.running = False
        self.interrupted_at = 0.0

    def reply(self, body: dict[str, Any]) -> None:
        def encode() -> bytes:  # UTF-8: names and logs in any script stay compact
            return json.dumps(body, ensure_ascii=False).encode()

        while len(payload := encode()) > REPLY_BUDGET and body.get("files"):
            body["files"] = body["files"][: len(body["files"]) // 2]  # files_total keeps count
        data = sign(self.key, b"r", self.sent, payload)
        self.sent += 1
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]

    def on_interrupt(self, _signum: int, _frame: Any) -> None:
        if self.running and self.worker:
            self.interrupted_at = self.interrupted_at or time.monotonic()
            with contextlib.suppress(OSError):
                os.kill(self.worker, signal.SIGINT)

    def reap(self, *_: Any) -> None:
        """Collect every ended child (PID 1 inherits the user's orphans too)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.worker:
                self.status = status

    def spawn(self) -> None:
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the worker-to-be: only /dev/null, its socket, and user code
            try:
                os.setsid()
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.dup2(child.fileno(), 3)
                os.set_inheritable(3, True)
                os.closerange(4, os.sysconf("SC_OPEN_MAX"))
                os.chdir(WORK)
                os.execv(sys.executable, [sys.executable, "-u", "-c", self.source, "work"])
            finally:
                os._exit(127)
        child.close()
        self.worker, self.status, self.channel = pid, None, parent
        self.lines = Lines(parent.recv, MAX_WORKER_LINE)

    def stop_worker(self) -> None:
        if self.worker:
            with contextlib.suppress(OSError):
                os.killpg(self.worker, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.status is None and time.monotonic() < deadline:
                time.sleep(0.01)
                self.reap()
        if self.channel is not None:
            self.channel.close()
        self.worker, self.channel, self.lines = 0, None, None

    def _wait(self, seq: int) -> dict[str, Any] | None:
        """The worker's reply to `seq`, or None when the worker ended first."""
        assert self.channel is not None and self.lines is not None
        while self.status is None:
            if self.interrupted_at and time.monotonic() - self.interrupted_at > KILL_GRACE:
                with contextlib.suppress(OSError):
                    os.killpg(self.worker, signal.SIGKILL)
            if self.lines.eof:
                time.sleep(0.05)
            elif select.select([self.channel], [], [], 0.25)[0]:
                self.lines.fill()
                while (line := self.lines.pop()) is not None:
                    try:
                        message = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(message, dict) and message.get("seq") == seq:
                        return message
            self.reap()
        return None

    def _death(self, oom_before: int | None) -> str:
        status = self.status or 0
        oom_after = _oom_kills()
        if oom_before is not None and oom_after is not None and oom_after > oom_before:
            return f"The Python process ran out of memory and was restarted: {KEEP}."
        if self.interrupted_at and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            return f"The code ignored the interrupt, so its Python process was restarted: {KEEP}."
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            why = f"was killed by signal {sig}" + (" (out of memory?)" if sig == 9 else "")
        else:
            why = f"exited (code {os.WEXITSTATUS(status)})"
        return f"The Python process {why} and was restarted: {KEEP}."

    def execute(self, code: str) -> dict[str, Any]:
        for name in [".figures"] + [n for n in os.listdir(ROOT) if STAGING.fullmatch(n)]:
            shutil.rmtree(os.path.join(ROOT, name), ignore_errors=True)
        restarted = None
        if self.worker and self.status is not None:  # it ended between executions
            restarted = self._death(None)
            self.stop_worker()
        if not self.worker:
            try:
                self.spawn()
            except OSError as exc:
                return {"logs": "", "error": f"Could not start the Python process: {exc}"}
        before, notes = _files(WORK)
        oom_before = _oom_kills()
        self.seq += 1
        assert self.channel is not None
        with contextlib.suppress(OSError):  # a worker that is gone: _wait sees it
            self.channel.sendall(
                b"\n" + json.dumps({"seq": self.seq, "code": code}).encode() + b"\n"
            )
        self.running, self.interrupted_at = True, 0.0
        try:
            message = self._wait(self.seq)
        finally:
            self.running = False
        if message is None:
            restarted = self._death(oom_before)
            self.stop_worker()
            message = {}
        self.interrupted_at = 0.0
        after, more = _files(WORK)
        changed = sorted(p for p, sig in after.items() if before.get(p) != sig)
        figures = sorted(_files(FIGURES)[0].items())
        error = message.get("error")
        return {
            "logs": clean(message.get("logs") or "", MAX_LOG_BYTES + 32),
            "error": clean(error, MAX_ERROR_CHARS) if error else None,
            "restarted": restarted,
            "files": [[p, after[p][1]] for p in changed[:MAX_LISTED]],
            "files_total": len(changed),
            "figures": [[p, sig[1]] for p, sig in figures[:MAX_LISTED]],
            "figures_total": len(figures),
            "notes": notes + [n for n in more if n not in notes],
        }

    def adopt(self, staging: Any, name: Any) -> dict[str, Any]:
        ok = STAGING.fullmatch(str(staging)) and NAME.fullmatch(str(name))
        if not ok or name in (".", ".."):
            raise ValueError("bad staging path or name")
        source, target = os.path.join(ROOT, staging, name), os.path.join(WORK, name)
        if not stat.S_ISREG(os.lstat(source).st_mode):
            raise ValueError("not a regular file")
        os.rename(source, target)
        shutil.rmtree(os.path.join(ROOT, staging), ignore_errors=True)
        return {"path": target, "size": os.lstat(target).st_size}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "exec":
            return self.execute(str(request["code"]))
        if op == "adopt":
            return self.adopt(request.get("staging"), request.get("name"))
        if op == "discard" and STAGING.fullmatch(str(request.get("staging"))):
            shutil.rmtree(os.path.join(ROOT, str(request["staging"])), ignore_errors=True)
        elif op != "ping":
            raise ValueError(f"unknown op {op!r}")
        return {}


def supervise() -> None:
    # Before anything else: processes of the same uid may not read our memory or fds.
    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        sys.exit("cannot make the supervisor non-dumpable")
    with open("/proc/self/cmdline", "rb") as fh:
        argv = fh.read().split(b"\0")
    source = argv[argv.index(b"-c") + 1].decode()
    requests = Lines(lambda n: os.read(0, n), MAX_REQUEST_LINE)
    if (first := requests.read_line()) is None:
        return
    supervisor = Supervisor(bytes.fromhex(json.loads(first)["key"]), source)
    signal.signal(signal.SIGINT, supervisor.on_interrupt)
    signal.signal(signal.SIGCHLD, supervisor.reap)
    os.makedirs(WORK, exist_ok=True)
    os.chdir(WORK)
    supervisor.spawn()
    supervisor._wait(0)  # the worker is up (or gone: the first exec says so)
    supervisor.reply({"ok": True, "ready": True})
    received = 1
    while (line := requests.read_line()) is not None:
        payload = verify(supervisor.key, b"q", received, line)
        if payload is None:
            continue  # not from the server (gVisor lets user code write to our stdin)
        received += 1
        try:
            reply = {"ok": True, **supervisor.handle(json.loads(payload))}
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            reply = {"ok": False, "error": clean(f"{type(exc).__name__}: {exc}", MAX_ERROR_CHARS)}
        supervisor.reply(reply)
    supervisor.stop_worker()


if __name__ == "__main__":
    work() if sys.argv[-1] == "work" else supervise()
