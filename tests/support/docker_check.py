"""Is there a Docker daemon with the sandbox image? Under CI a missing one is a failure,
never a skip; locally the tests say in one line how to get one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.server_process import ServerProcess

HOW = (
    'start one with `eval "$(scripts/dockerd)"` (root; apt-get install docker.io mmdebstrap) '
    "and build the image with `.venv/bin/assistd sandbox build`"
)


def require_sandbox(image: str = "assistd-sandbox:1", runtime: str | None = None) -> None:
    """Docker, the image and (if named) a registered runtime such as gVisor's runsc."""
    problem = None
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        client.images.get(image)
        if runtime and runtime not in (client.info().get("Runtimes") or {}):
            problem = f"dockerd has no {runtime} runtime (apt-get install runsc, restart it)"
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        problem = f"{exc.__class__.__name__}: {str(exc)[:200]}"
    if problem is None:
        return
    message = f"code_interpreter tests need Docker and {image} ({problem}); {HOW}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def sandboxed_server(folder: Path, model_url: str, **extra: str) -> Iterator[ServerProcess]:
    """A running server with the code-interpreter sandbox on, sized for the suite's code
    (256 MiB, a 20 s time limit for a cold matplotlib import on a loaded 2-core machine);
    `extra` overrides any setting."""
    from tests.conftest import server_env

    require_sandbox()
    settings = {
        "ASSISTD_SANDBOX": "auto",
        "ASSISTD_SANDBOX_TIMEOUT": "20",
        "ASSISTD_SANDBOX_MEMORY": "256m",
        "ASSISTD_SANDBOX_POOL": "1",
        **extra,
    }
    proc = ServerProcess(folder, env=server_env(model_url, **settings)).start()
    try:
        yield proc
    finally:
        proc.stop()
