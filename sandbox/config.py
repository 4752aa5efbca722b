"""Sandbox settings and the values that cross between the sandbox and its callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sandbox.image import DEFAULT_IMAGE

MIB = 1024 * 1024
WORK_DIR = "/mnt/data"


class SandboxUnavailable(Exception):
    """Docker or the image is missing, or every session is busy: no code can run now."""


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and pool settings; every field maps to an ASSISTD_SANDBOX_* variable
    (docs/configuration.md)."""

    image: str = DEFAULT_IMAGE
    runtime: str | None = None  # "runsc" for gVisor; None is Docker's default (runc)
    memory: str = "512m"
    cpus: float = 1.0
    pids_limit: int = 64
    work_size: str = "256m"  # the session's volume (/mnt/data): its disk quota
    tmp_size: str = "64m"
    shm_size: str = "16m"  # /dev/shm, a tmpfs counted in the container's memory
    exec_timeout: float = 60.0
    idle_ttl: float = 3600.0
    pool_size: int = 1
    start_timeout: float = 30.0
    max_sessions: int = 8  # live sessions per process; the least recently used idle one goes
    max_input_bytes: int = 100 * MIB  # one file copied in
    max_file_bytes: int = 128 * MIB  # one file returned
    max_files: int = 20  # files returned per execution
    max_images: int = 10  # images shown per execution
    max_image_bytes: int = 8 * MIB  # one image
    max_output_bytes: int = 256 * MIB  # files and images returned per execution, together


@dataclass(frozen=True)
class Input:
    """A file to place at /mnt/data/<name> before code runs."""

    file_id: str
    name: str  # a plain file name
    path: Path  # where its bytes are on this host
    size: int


@dataclass(frozen=True)
class Output:
    """A file the kernel reported: a changed file under /mnt/data, or a figure."""

    path: str
    size: int


@dataclass
class ExecResult:
    logs: str
    error: str | None = None
    figures: list[Output] = field(default_factory=list)  # PNGs, fetched with Session.fetch
    files: list[Output] = field(default_factory=list)  # created or changed under /mnt/data
    files_unlisted: int = 0  # changed files the kernel did not name (past its listing cap)
    notes: list[str] = field(default_factory=list)  # limits hit, resets: for the logs
    timed_out: bool = False
    restarted: bool = False  # the variables are gone (files too when the session ended)


def fmt_bytes(n: int) -> str:
    """`5 MiB`, `6.5 MiB`, `300 KiB`, `12 bytes`."""
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"
