"""Is there a Docker daemon with the sandbox image? Under CI a missing one is a failure,
never a skip; locally the tests say in one line how to get one."""

from __future__ import annotations

import os

import pytest

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
