"""The Docker objects behind a session (a container and its volume, both named
`assistd-sandbox-<hex>` and labelled with the owning process), and the sweep that
removes those nobody tracks.

Why a sweep: under load the daemon can take longer than the client's timeout to create
a container, and it finishes the job after the client gave up. Removing the volume then
is not enough (Docker recreates a missing named volume, unlabelled and without the tmpfs
quota, for the late container), so the container is named after its volume and cleaned
up by name, and anything left over is swept: containers and volumes of this process that
it does not track, those of dead processes of this host (a crash skips close()), and
unlabelled volumes with our prefix that no container uses.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Container
from pathlib import Path
from typing import Any

from docker.errors import DockerException, NotFound
from docker.types import Mount

from sandbox.config import SandboxConfig
from sandbox.session import ROOT, Session

KERNEL_SOURCE = (Path(__file__).parent / "kernel.py").read_text()
LABEL = "assistd.sandbox"
PREFIX = "assistd-sandbox-"
MAX_INODES = 100_000  # files and directories in a session's volume
# Under gVisor the pids cgroup counts the sandbox kernel's own host threads too: about 56
# for an idle session, 74 after numpy, matplotlib and a subprocess (measured, runsc
# 2022-12 on ptrace). They get this allowance on top of ASSISTD_SANDBOX_PIDS; a gVisor
# sandbox that reaches its limit dies whole (a fork bomb ends the session).
GVISOR_PIDS = 128


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gvisor(runtime: str | None) -> bool:
    return bool(runtime) and any(name in str(runtime) for name in ("runsc", "gvisor"))


def new_name() -> str:
    return PREFIX + uuid.uuid4().hex


def create(client: Any, cfg: SandboxConfig, owner: str, name: str) -> Session:
    """Start a session's volume and container, both called `name`; on any failure
    remove what exists of them (the sweep catches what the daemon makes later)."""
    labels = {LABEL: owner}
    volume = client.volumes.create(
        name=name,
        driver="local",
        driver_opts={
            "type": "tmpfs",
            "device": "tmpfs",
            "o": f"size={cfg.work_size},nr_inodes={MAX_INODES},uid=65534,gid=65534,"
            "mode=0700,nosuid,nodev",
        },
        labels=labels,
    )
    try:
        container = client.containers.create(
            cfg.image,
            name=name,
            command=["python3", "-u", "-c", KERNEL_SOURCE, "supervise"],
            stdin_open=True,
            tty=False,
            network_mode="none",
            user="65534:65534",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            tmpfs={"/tmp": f"size={cfg.tmp_size},mode=1777"},
            shm_size=cfg.shm_size,
            mounts=[Mount(ROOT, volume.name, type="volume", no_copy=True)],
            pids_limit=cfg.pids_limit + (GVISOR_PIDS if _gvisor(cfg.runtime) else 0),
            mem_limit=cfg.memory,
            memswap_limit=cfg.memory,
            nano_cpus=int(cfg.cpus * 1e9),
            runtime=cfg.runtime,
            labels=labels,
            working_dir="/",
        )
    except Exception:
        discard(client, name)
        raise
    sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    session = Session(container, volume, sock, owner)
    try:
        container.start()
        session.handshake(cfg.start_timeout)
    except Exception:
        session.close()
        raise
    return session


def discard(client: Any, name: str) -> None:
    """Remove the container and the volume called `name`, if they exist."""
    with contextlib.suppress(NotFound, DockerException):
        client.containers.get(name).remove(force=True)
    with contextlib.suppress(NotFound, DockerException):
        client.volumes.get(name).remove(force=True)


def sweep(client: Any, owner: str | None, tracked: Container[str]) -> int:
    """Remove sandbox containers and volumes nobody tracks: this process's (`owner`) that
    are not in `tracked`, those of dead processes of this host, and unlabelled unused
    volumes with our prefix. Other live processes' and other hosts' are left alone.
    Returns how many containers went."""
    host = os.uname().nodename

    def stray(labels: dict[str, str] | None, name: str) -> bool:
        value = (labels or {}).get(LABEL, "")
        if owner is not None and value == owner:
            return name not in tracked
        owner_host, _, rest = value.partition(":")
        pid = rest.partition(":")[0]
        return owner_host == host and pid.isdigit() and not _alive(int(pid))

    removed = 0
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        if stray(container.labels, container.name):
            with contextlib.suppress(DockerException):
                container.remove(force=True)
                removed += 1
    for volume in client.volumes.list(filters={"label": LABEL}):
        if stray(volume.attrs.get("Labels"), volume.name):
            with contextlib.suppress(DockerException):
                volume.remove()  # refused while a container still uses it
    for volume in client.volumes.list(filters={"dangling": True}):
        if volume.name.startswith(PREFIX) and not volume.attrs.get("Labels"):
            with contextlib.suppress(DockerException):
                volume.remove()
    return removed
