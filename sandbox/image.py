"""Build the sandbox image without a container registry.

These machines reach Debian's mirror and PyPI but no registry, so the image is a
root filesystem made by mmdebstrap (Debian essential + python3), with wheels downloaded
by the host's pip and installed into it, then `docker import`ed. Users who can pull a
public base image can use `sandbox/Dockerfile` instead; both give the same layout
(python3 on PATH, the packages below, tini, MPLBACKEND=Agg).
"""

from __future__ import annotations

import logging
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import docker

log = logging.getLogger("assistd.sandbox")

DEFAULT_IMAGE = "assistd-sandbox:1"
DEBIAN_SUITE = "bookworm"  # python3 is 3.11 there, the version the wheels are fetched for
DEBIAN_PACKAGES = ["python3", "libstdc++6", "ca-certificates", "tini", "fonts-dejavu-core"]
PYTHON_PACKAGES = ["numpy", "pandas", "matplotlib", "scipy", "openpyxl", "sympy", "tabulate"]
ENV = {
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp",
    "HOME": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "LANG": "C.UTF-8",
}


def debian_mirror() -> str:
    """The machine's own Debian mirror (the one apt already reaches)."""
    for source in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        try:
            text = source.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(https?://\S+/debian)(?=\s|$)", text):
            return match.group(1)
    return "http://deb.debian.org/debian"


def _platform_tags() -> list[str]:
    machine = platform.machine()
    return [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"]


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def build_rootfs(rootfs: Path, wheels: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError(
            "mmdebstrap is not installed (apt-get install mmdebstrap), or build "
            "sandbox/Dockerfile where a base image can be pulled"
        )
    subprocess.run(
        [
            "mmdebstrap",
            "--variant=essential",
            "--mode=root",
            "--format=directory",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(rootfs),
            debian_mirror(),
        ],
        check=True,
    )
    platforms = [arg for tag in _platform_tags() for arg in ("--platform", tag)]
    common = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    _pip("download", "-q", "-d", str(wheels), *common, *platforms, *PYTHON_PACKAGES)
    site = rootfs / "usr/local/lib/python3.11/dist-packages"
    _pip(
        "install", "-q", "--no-index", "--find-links", str(wheels), "--target", str(site),
        "--no-compile", *common, *platforms, *PYTHON_PACKAGES,
    )  # fmt: skip
    (rootfs / "mnt/data").mkdir(parents=True, exist_ok=True)


def import_rootfs(client: docker.DockerClient, rootfs: Path, tag: str, workdir: Path) -> None:
    archive = workdir / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        for child in sorted(rootfs.iterdir()):
            tar.add(child, arcname=child.name)
    repository, _, version = tag.partition(":")
    changes = [f"ENV {key}={value}" for key, value in ENV.items()]
    changes += ["WORKDIR /mnt/data", 'CMD ["python3"]']
    client.api.import_image(
        src=str(archive), repository=repository, tag=version or "latest", changes=changes
    )


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build(tag: str = DEFAULT_IMAGE, *, if_missing: bool = False) -> bool:
    """Build the image; False when `if_missing` and it is already there."""
    client = docker.from_env()
    if if_missing and image_exists(client, tag):
        return False
    with tempfile.TemporaryDirectory(prefix="assistd-sandbox-") as tmp:
        work = Path(tmp)
        log.info("building %s: Debian root filesystem and Python wheels", tag)
        build_rootfs(work / "rootfs", work / "wheels")
        log.info("importing %s into Docker", tag)
        import_rootfs(client, work / "rootfs", tag, work)
    return True
