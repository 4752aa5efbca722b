"""Long-lived, locked-down Python sessions in Docker containers, one per key (a thread).

Each session is a container running `sandbox/kernel.py` with its own Docker volume (a
size-capped tmpfs) at /mnt, attached over Docker's stdin/stdout stream: executing a
snippet costs a signed JSON line each way instead of a `docker exec`. Sessions keep their
globals until they sit idle past the TTL, their key is ended (`forget`: a deleted thread)
or found gone by the `gone` check, or they are evicted, least recently used first, to
stay within `max_sessions`; the key's next session then starts with a note saying so. A
warm pool of started containers makes a new key's first execution fast. Everything here
blocks: callers on an event loop run it in a thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable

import docker
from docker.errors import DockerException

from sandbox import containers
from sandbox.config import (
    WORK_DIR,
    ExecResult,
    Input,
    Output,
    SandboxConfig,
    SandboxUnavailable,
)
from sandbox.session import Session

__all__ = [
    "WORK_DIR",
    "ExecResult",
    "Input",
    "Output",
    "SandboxConfig",
    "SandboxManager",
    "SandboxUnavailable",
    "Session",
    "LABEL",
]

log = logging.getLogger("assistd.sandbox")
LABEL = containers.LABEL

MAX_NOTES = 10_000  # keys remembered for "your session was reset" notes
SWEEP_SECONDS = 60.0  # how often the upkeep looks for untracked containers and volumes

GoneCheck = Callable[[list[str]], Iterable[str]]


def _ended_note(session: Session) -> str:
    return (
        "This thread's sandbox session ended since its last execution "
        f"({session.end_reason()}): its variables and the files it wrote are gone."
    )


class SandboxManager:
    """Sessions by key, a warm pool, a cap with LRU eviction, and upkeep in a thread."""

    def __init__(self, config: SandboxConfig, client: docker.DockerClient | None = None) -> None:
        self.config = config
        self._client = client
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._sessions: dict[str, Session] = {}
        self._pool: list[Session] = []
        self._starting = 0  # sessions being created for keys (counted against the cap)
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._resets: OrderedDict[str, str] = OrderedDict()  # key -> note for its next run
        self._closing: list[Session] = []
        self._creating: set[str] = set()  # names of sessions being created
        self._gone: GoneCheck | None = None
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
        """Remove sandbox containers and volumes nobody tracks (containers/sweep)."""
        with self._lock:
            tracked = {s.name for s in (*self._sessions.values(), *self._pool, *self._closing)}
            tracked |= self._creating
        return containers.sweep(self.client, self.owner, tracked)

    # -- sessions --------------------------------------------------------------------

    def _create(self) -> Session:
        name = containers.new_name()
        with self._lock:
            self._creating.add(name)
        try:
            return containers.create(self.client, self.config, self.owner, name)
        finally:
            with self._lock:
                self._creating.discard(name)

    def _start(self) -> Session:
        try:
            return self._create()
        except DockerException as exc:
            raise SandboxUnavailable(f"could not start a sandbox session: {exc}") from exc

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def session(self, key: str) -> tuple[Session, str | None]:
        """(session, note): the key's live session, or a new one; the note says why an
        earlier session of this key is gone (idle past the TTL, evicted), if it is."""
        with self._key_lock(key):
            with self._lock:
                current = self._sessions.get(key)
                if current is not None and not current.dead:
                    current.last_used = time.monotonic()
                    return current, None
                self._sessions.pop(key, None)
                note = self._resets.pop(key, None)
            if current is not None:  # it died between executions: say so
                note = note or _ended_note(current)
                current.close()
            self._make_room()
            try:
                with self._lock:
                    pooled = self._pool.pop() if self._pool else None
                if pooled is not None and pooled.dead:
                    pooled.close()
                    pooled = None
                session = pooled or self._start()
                session.key = key
                session.last_used = time.monotonic()
                with self._lock:
                    self._sessions[key] = session
                    self.sessions_started += 1
            finally:
                with self._lock:
                    self._starting -= 1
            self._wake.set()  # refill the pool
            return session, note

    def _make_room(self) -> None:
        """Reserve a place under max_sessions, evicting the least recently used idle
        session if need be; waits (up to start_timeout) while every session is busy."""
        deadline = time.monotonic() + self.config.start_timeout
        while True:
            with self._lock:
                if len(self._sessions) + self._starting < self.config.max_sessions:
                    self._starting += 1
                    return
                idle = [(s.last_used, k) for k, s in self._sessions.items() if not s.busy]
                victim = self._sessions.pop(min(idle)[1]) if idle else None
                if victim is not None and victim.key is not None:
                    self._note(victim.key, self._evicted_note())
            if victim is not None:
                log.info(
                    "sandbox: evicted the session of %s (cap %d)",
                    victim.key,
                    self.config.max_sessions,
                )
                victim.close()
                continue
            if time.monotonic() > deadline:
                raise SandboxUnavailable(
                    f"all {self.config.max_sessions} sandbox sessions are busy running code "
                    "(ASSISTD_SANDBOX_MAX_SESSIONS); try again shortly"
                )
            time.sleep(0.1)

    def _evicted_note(self) -> str:
        return (
            "This thread's sandbox session was reset to make room for others (at most "
            f"{self.config.max_sessions} run at once, ASSISTD_SANDBOX_MAX_SESSIONS): its "
            "variables and the files it wrote are gone."
        )

    def _note(self, key: str, note: str) -> None:
        """Remember why `key`'s session ended, for its next run (caller holds the lock)."""
        self._resets[key] = note
        self._resets.move_to_end(key)
        while len(self._resets) > MAX_NOTES:
            self._resets.popitem(last=False)

    def current(self, key: str) -> Session | None:
        """The key's live session, if any (never creates one)."""
        with self._lock:
            session = self._sessions.get(key)
        return session if session is not None and not session.dead else None

    def has_session(self, key: str) -> bool:
        return self.current(key) is not None

    def run(
        self, key: str, code: str, inputs: Iterable[Input] = (), timeout: float | None = None
    ) -> ExecResult:
        """Copy in the inputs the key's session lacks, then execute `code`. Notes (a
        reset session, refused inputs) come first in the result's notes."""
        session, note = self.session(key)
        notes = [note] if note else []
        for item in inputs:
            if refusal := session.provide(item, self.config):
                notes.append(refusal)
        result = session.execute(code, timeout or self.config.exec_timeout)
        result.notes[:0] = notes
        # An earlier session of this key was lost (idle past the TTL, evicted, died):
        # its variables are gone, as after a restart.
        result.restarted = result.restarted or note is not None
        if session.dead:
            self.drop(key, session)
        return result

    def execute(self, key: str, code: str, timeout: float | None = None) -> ExecResult:
        return self.run(key, code, (), timeout)

    def interrupt(self, key: str) -> None:
        session = self.current(key)
        if session is not None:
            session.interrupt()

    def drop(self, key: str, only: Session | None = None) -> None:
        """Close the key's session now (or only if it is still `only`)."""
        with self._lock:
            session = self._sessions.get(key)
            if session is None or (only is not None and session is not only):
                return
            del self._sessions[key]
        session.close()

    def forget(self, key: str) -> None:
        """The key is gone for good (its thread was deleted): its session is removed in
        the background, within moments, and no note is kept for it."""
        with self._lock:
            session = self._sessions.pop(key, None)
            self._resets.pop(key, None)
            lock = self._key_locks.get(key)
            if lock is not None and not lock.locked():
                del self._key_locks[key]
            if session is not None:
                self._closing.append(session)
        if session is not None:
            log.info("sandbox: ending the session of %s", key)
            self._wake.set()
            if self._thread is None:  # no upkeep thread (library use): do it here
                self.reap()

    # -- maintenance -----------------------------------------------------------------

    def reap(self) -> list[str]:
        """Close sessions idle past the TTL (and dead ones); return their keys."""
        now = time.monotonic()
        ttl = self.config.idle_ttl
        with self._lock:
            expired = [
                k
                for k, s in self._sessions.items()
                if s.dead or (now - s.last_used > ttl and not s.busy)
            ]
            victims = [self._sessions.pop(k) for k in expired]
            for key, session in zip(expired, victims, strict=True):
                self._note(key, _ended_note(session) if session.dead else self._idle_note())
            self.sessions_evicted += len(victims)
            victims += self._closing
            self._closing = []
        for session in victims:
            session.close()
        return expired

    def _idle_note(self) -> str:
        return (
            f"This thread's sandbox session sat idle for over {self.config.idle_ttl:g} s "
            "(ASSISTD_SANDBOX_TTL) and was reset: its variables and the files it wrote are gone."
        )

    def check_gone(self) -> list[str]:
        """Ask the `gone` check which keys ended (deleted threads, revoked projects) and
        close their sessions."""
        if self._gone is None:
            return []
        with self._lock:
            keys = list(self._sessions)
        if not keys:
            return []
        ended = [k for k in self._gone(keys) if k in keys]
        for key in ended:
            self.forget(key)
        return ended

    def fill_pool(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                gone = [s for s in self._pool if s.dead]
                self._pool = [s for s in self._pool if not s.dead]
                full = len(self._pool) >= self.config.pool_size
            for session in gone:
                session.close()
            if full:
                return
            session = self._create()
            with self._lock:
                self._pool.append(session)

    def start(self, interval: float = 5.0, gone: GoneCheck | None = None) -> None:
        """Background upkeep: end sessions whose keys are gone, reap idle ones, keep the
        pool full. `gone(keys)` returns the keys that no longer exist."""
        self._gone = gone
        interval = min(interval, max(0.2, self.config.idle_ttl / 2))

        swept = float("-inf")  # the first pass removes what a crashed predecessor left

        def sweep() -> None:
            nonlocal swept
            if time.monotonic() - swept > SWEEP_SECONDS:
                swept = time.monotonic()
                if removed := self.remove_orphans():
                    log.info("removed %d sandbox containers nobody tracks", removed)

        def loop() -> None:
            while not self._stop.is_set():
                for step in (sweep, self.check_gone, self.reap, self.fill_pool):
                    try:
                        step()
                    except Exception as exc:  # noqa: BLE001 - keep the upkeep alive
                        log.warning("sandbox upkeep failed: %s", exc)
                self._wake.wait(interval)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, daemon=True, name="sandbox-upkeep")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            sessions = list(self._sessions.values()) + self._pool + self._closing
            self._sessions.clear()
            self._pool.clear()
            self._closing = []
        for session in sessions:
            session.close()
