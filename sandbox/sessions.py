"""Long-lived, locked-down Python sessions in Docker containers, one per key (a thread).

Each session is a container running `sandbox/kernel.py`, attached over Docker's
stdin/stdout stream: executing a snippet costs a JSON line each way instead of a
`docker exec`. Sessions keep their globals until they sit idle past the TTL; a warm pool
of started containers makes a new key's first execution fast. Everything here blocks:
callers on an event loop run it in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, NotFound
from docker.utils.socket import STDOUT, frames_iter

from sandbox.image import DEFAULT_IMAGE

log = logging.getLogger("assistd.sandbox")

KERNEL_SOURCE = (Path(__file__).parent / "kernel.py").read_text()
WORK_DIR = "/mnt/data"
LABEL = "assistd.sandbox"
_CLOSED = object()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SandboxUnavailable(Exception):
    """Docker or the image is missing: code_interpreter cannot run here."""


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and pool settings; every field maps to an ASSISTD_SANDBOX_* variable."""

    image: str = DEFAULT_IMAGE
    runtime: str | None = None  # "runsc" for gVisor; None is Docker's default (runc)
    memory: str = "512m"
    cpus: float = 1.0
    pids_limit: int = 64
    work_size: str = "256m"  # tmpfs at /mnt/data: the session's disk quota
    tmp_size: str = "64m"
    exec_timeout: float = 60.0
    idle_ttl: float = 3600.0
    pool_size: int = 1
    start_timeout: float = 30.0


@dataclass
class ExecResult:
    logs: str
    error: str | None = None
    images: list[bytes] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # paths created or changed
    timed_out: bool = False
    restarted: bool = False  # the session died (or was killed) and its state is gone


class Session:
    """One container and its kernel. Requests are serialised by a lock."""

    def __init__(self, container: Any, sock: Any, owner: str) -> None:
        self.key: str | None = None
        self.container = container
        self.owner = owner
        self._sock = sock
        self._raw = getattr(sock, "_sock", sock)
        self._lines: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self.dead = False
        self.last_used = time.monotonic()
        self.files: dict[str, str] = {}  # file_id -> path under /mnt/data, already copied
        threading.Thread(target=self._read, daemon=True, name="sandbox-reader").start()

    def _read(self) -> None:
        buffer = b""
        try:
            for stream, data in frames_iter(self._raw, tty=False):
                if stream != STDOUT:
                    log.debug("sandbox stderr: %s", data[:500])
                    continue
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(_CLOSED)

    def _reply(self, timeout: float) -> dict[str, Any] | None:
        """The next reply; None on timeout; raises EOFError when the kernel is gone."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is _CLOSED:
            self.dead = True
            raise EOFError
        return dict(json.loads(line))

    def wait_ready(self, timeout: float) -> None:
        try:
            reply = self._reply(timeout)
        except EOFError:
            reply = None
        if not reply or not reply.get("ready"):
            raise SandboxUnavailable(f"sandbox kernel did not start: {self._exit_reason()}")

    def _send(self, payload: dict[str, Any]) -> None:
        self._raw.sendall((json.dumps(payload) + "\n").encode())

    def request(self, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        with self._lock:
            self.last_used = time.monotonic()
            self._send(payload)
            reply = self._reply(timeout)
            if reply is None:
                raise TimeoutError(f"sandbox did not answer {payload['op']} in {timeout} s")
            if not reply.get("ok"):
                raise RuntimeError(reply.get("error") or "sandbox error")
            return reply

    def execute(self, code: str, timeout: float) -> ExecResult:
        with self._lock:
            self.last_used = time.monotonic()
            try:
                self._send({"op": "exec", "code": code})
                reply = self._reply(timeout)
                if reply is None:
                    return self._interrupt_overdue(timeout)
            except (EOFError, OSError):
                self.dead = True
                return ExecResult(logs="", error=self._exit_reason(), restarted=True)
            finally:
                self.last_used = time.monotonic()
        if not reply.get("ok"):
            return ExecResult(logs="", error=str(reply.get("error")))
        return ExecResult(
            logs=reply.get("logs", ""),
            error=reply.get("error"),
            images=[base64.b64decode(i) for i in reply.get("images", [])],
            files=list(reply.get("files", [])),
        )

    def _interrupt_overdue(self, timeout: float) -> ExecResult:
        """SIGINT the kernel (variables survive); kill the container if that fails."""
        message = f"Execution timed out after {timeout:g} seconds and was interrupted."
        try:
            self.container.kill(signal="SIGINT")
            reply = self._reply(5.0)
        except (DockerException, EOFError):
            reply = None
        if reply is not None:
            return ExecResult(logs=reply.get("logs", ""), error=message, timed_out=True)
        self.close()
        message += " The session did not respond and was restarted: its variables are gone."
        return ExecResult(logs="", error=message, timed_out=True, restarted=True)

    def interrupt(self) -> None:
        """Interrupt a running execution (a cancelled run)."""
        with contextlib.suppress(DockerException):
            self.container.kill(signal="SIGINT")

    def _exit_reason(self) -> str:
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

    def close(self) -> None:
        self.dead = True
        with contextlib.suppress(NotFound, DockerException):
            self.container.remove(force=True)
        with contextlib.suppress(OSError):
            self._sock.close()


class SandboxManager:
    """Sessions by key, a warm pool, and a reaper for idle sessions."""

    def __init__(self, config: SandboxConfig, client: docker.DockerClient | None = None) -> None:
        self.config = config
        self._client = client
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._sessions: dict[str, Session] = {}
        self._pool: list[Session] = []
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # For monitoring: sessions handed to a key, and sessions removed for idling.
        self.sessions_started = 0
        self.sessions_evicted = 0

    def live_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- availability ----------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=30)
            except DockerException as exc:
                raise SandboxUnavailable(f"Docker is not reachable: {exc}") from exc
        return self._client

    def status(self) -> tuple[bool, str]:
        """(usable, why) for start-up logs and /ready."""
        try:
            self.client.ping()
        except (DockerException, SandboxUnavailable) as exc:
            return False, f"Docker is not reachable ({exc.__class__.__name__}); set DOCKER_HOST"
        try:
            self.client.images.get(self.config.image)
        except DockerException:
            return False, f"image {self.config.image} is missing; run `assistd sandbox build`"
        runtime = self.config.runtime
        if runtime and runtime not in (self.client.info().get("Runtimes") or {}):
            return False, f"Docker has no runtime {runtime!r} (dockerd --add-runtime)"
        return True, f"image {self.config.image}, runtime {runtime or 'default'}"

    def remove_orphans(self) -> int:
        """Remove sandbox containers left by processes of this host that are gone (a
        crash skips close()). Containers of live processes, or of other hosts sharing
        the daemon, are left alone."""
        host = os.uname().nodename
        removed = 0
        for container in self.client.containers.list(all=True, filters={"label": LABEL}):
            owner_host, _, rest = container.labels.get(LABEL, "").partition(":")
            pid = rest.partition(":")[0]
            if owner_host != host or not pid.isdigit() or _alive(int(pid)):
                continue
            with contextlib.suppress(DockerException):
                container.remove(force=True)
                removed += 1
        return removed

    # -- sessions --------------------------------------------------------------------

    def _create(self) -> Session:
        cfg = self.config
        container = self.client.containers.create(
            cfg.image,
            command=["python3", "-u", "-c", KERNEL_SOURCE],
            stdin_open=True,
            tty=False,
            init=True,
            network_mode="none",
            user="65534:65534",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            tmpfs={
                "/tmp": f"size={cfg.tmp_size},mode=1777",
                WORK_DIR: f"size={cfg.work_size},uid=65534,gid=65534,mode=0700",
            },
            pids_limit=cfg.pids_limit,
            mem_limit=cfg.memory,
            memswap_limit=cfg.memory,
            nano_cpus=int(cfg.cpus * 1e9),
            runtime=cfg.runtime,
            labels={LABEL: self.owner},
            working_dir=WORK_DIR,
        )
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        session = Session(container, sock, self.owner)
        try:
            container.start()
            session.wait_ready(cfg.start_timeout)
        except Exception:
            session.close()
            raise
        return session

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def session(self, key: str) -> tuple[Session, bool]:
        """(session, fresh): the key's live session, or a new one (fresh=True)."""
        with self._key_lock(key):
            with self._lock:
                current = self._sessions.get(key)
                if current is not None and not current.dead:
                    return current, False
                pooled = self._pool.pop() if self._pool else None
            if current is not None:
                current.close()
            session = pooled if pooled is not None and not pooled.dead else self._create()
            session.key = key
            with self._lock:
                self._sessions[key] = session
                self.sessions_started += 1
            self._wake.set()  # refill the pool
            return session, True

    def has_session(self, key: str) -> bool:
        with self._lock:
            session = self._sessions.get(key)
            return session is not None and not session.dead

    def execute(self, key: str, code: str, timeout: float | None = None) -> ExecResult:
        session, _ = self.session(key)
        return session.execute(code, timeout or self.config.exec_timeout)

    def interrupt(self, key: str) -> None:
        with self._lock:
            session = self._sessions.get(key)
        if session is not None:
            session.interrupt()

    def drop(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is not None:
            session.close()

    # -- maintenance -----------------------------------------------------------------

    def reap(self) -> list[str]:
        """Close sessions idle past the TTL (and dead ones); return their keys."""
        now = time.monotonic()
        with self._lock:
            expired = [
                k
                for k, s in self._sessions.items()
                if s.dead or now - s.last_used > self.config.idle_ttl
            ]
            victims = [self._sessions.pop(k) for k in expired]
            self.sessions_evicted += len(victims)
        for session in victims:
            session.close()
        return expired

    def fill_pool(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._pool = [s for s in self._pool if not s.dead]
                if len(self._pool) >= self.config.pool_size:
                    return
            session = self._create()
            with self._lock:
                self._pool.append(session)

    def start(self, interval: float = 5.0) -> None:
        """Background upkeep: reap idle sessions and keep the pool full."""
        interval = min(interval, max(0.2, self.config.idle_ttl / 2))

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.reap()
                    self.fill_pool()
                except Exception as exc:  # noqa: BLE001 - keep the upkeep alive
                    log.warning("sandbox upkeep failed: %s", exc)
                self._wake.wait(interval)
                self._wake.clear()

        try:
            if removed := self.remove_orphans():
                log.info("removed %d sandbox containers left by dead processes", removed)
        except DockerException as exc:
            log.warning("could not look for orphaned sandbox containers: %s", exc)
        self._thread = threading.Thread(target=loop, daemon=True, name="sandbox-upkeep")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            sessions = list(self._sessions.values()) + self._pool
            self._sessions.clear()
            self._pool.clear()
        for session in sessions:
            session.close()
