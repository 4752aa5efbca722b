"""Build the sandbox image without a container registry.

These machines reach Debian's mirror and PyPI but no registry, so the image is a
root filesystem made by mmdebstrap (Debian essential + python3), with wheels downloaded
by the host's pip and installed into it, then `docker import`ed. Users who can pull a
public base image can use `sandbox/Dockerfile` instead; both give the same layout
(python3 on PATH, the packages below, tini, MPLBACKEND=Agg).

A site's extra packages go in either way: a full build installs them with the defaults,
and `base=` adds them as one layer over an existing image (no Debian mirror needed, and
seconds instead of minutes). Either way the image records its packages (packages.py).
"""

from __future__ import annotations

import io
import json
import logging
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import docker
from packaging.utils import canonicalize_name

from sandbox import packages

log = logging.getLogger("assistd.sandbox")

DEFAULT_IMAGE = "assistd-sandbox:1"
DEBIAN_SUITE = "bookworm"  # python3 is 3.11 there, the version the wheels are fetched for
DEBIAN_PACKAGES = ["python3", "libstdc++6", "ca-certificates", "tini", "fonts-dejavu-core"]
PYTHON_PACKAGES = packages.DEFAULT_PACKAGES
SITE = "usr/local/lib/python3.11/dist-packages"
ENV = {
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp",
    "HOME": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "LANG": "C.UTF-8",
}
# Every distribution in an image, asked of its own python3 (for a layer on top of it).
_LIST_DISTS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


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


def _target_args() -> list[str]:
    """pip options for the image's interpreter (CPython 3.11 on this architecture)."""
    platforms = [arg for tag in _platform_tags() for arg in ("--platform", tag)]
    return ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", *platforms]


def installed(site: Path) -> dict[str, str]:
    """Canonical name -> version of every distribution in a site-packages folder."""
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions(path=[str(site)])
    }


def build_rootfs(rootfs: Path, wheels: Path, specs: Sequence[str]) -> dict[str, str]:
    """Debian plus the Python packages; returns what was installed (name -> version)."""
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
    _pip("download", "-q", "-d", str(wheels), *_target_args(), *specs)
    site = rootfs / SITE
    _pip(
        "install", "-q", "--no-index", "--find-links", str(wheels), "--target", str(site),
        "--no-compile", *_target_args(), *specs,
    )  # fmt: skip
    (rootfs / "mnt/data").mkdir(parents=True, exist_ok=True)
    dists = installed(site)
    record = rootfs / packages.RECORD_PATH
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(packages.record_text(dists))
    return dists


def import_rootfs(
    client: docker.DockerClient, rootfs: Path, tag: str, workdir: Path, label: str
) -> None:
    archive = workdir / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        for child in sorted(rootfs.iterdir()):
            tar.add(child, arcname=child.name)
    repository, _, version = tag.partition(":")
    changes = [f"ENV {key}={value}" for key, value in ENV.items()]
    changes += ["WORKDIR /mnt/data", 'CMD ["python3"]', f"LABEL {packages.LABEL}={label}"]
    client.api.import_image(
        src=str(archive), repository=repository, tag=version or "latest", changes=changes
    )


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def recorded_packages(client: docker.DockerClient, tag: str) -> list[str] | None:
    """The image's package label (`name==version` items); None for an unlabelled image."""
    labels = client.images.get(tag).labels or {}
    return packages.from_label(labels.get(packages.LABEL))


def build(
    tag: str = DEFAULT_IMAGE,
    *,
    if_missing: bool = False,
    extra: Sequence[str] = (),
    base: str | None = None,
) -> bool:
    """Build the image with the default packages plus `extra`; over `base` when given.
    False when `if_missing` and the image is there with every package asked for."""
    client = docker.from_env()
    present = if_missing and image_exists(client, tag)
    if present and not packages.missing(extra, recorded_packages(client, tag)):
        return False
    with tempfile.TemporaryDirectory(prefix="assistd-sandbox-") as tmp:
        work = Path(tmp)
        if base is not None:
            log.info("building %s: %s over %s", tag, ", ".join(extra), base)
            build_layer(client, base, tag, extra, work)
            return True
        specs = packages.merged(PYTHON_PACKAGES, extra)
        log.info("building %s: Debian root filesystem and %s", tag, ", ".join(specs))
        dists = build_rootfs(work / "rootfs", work / "wheels", specs)
        log.info("importing %s into Docker", tag)
        import_rootfs(client, work / "rootfs", tag, work, packages.label_value(specs, dists))
    return True


def build_layer(
    client: docker.DockerClient, base: str, tag: str, extra: Sequence[str], work: Path
) -> None:
    """`extra` as one layer over `base`: wheels resolved against the versions the base
    already has (so nothing in it is replaced), only the new distributions copied in, and
    the record and label extended. Committed from a never-started container: no registry,
    no build step that runs anything."""
    if not extra:
        raise ValueError("a layer needs at least one package (--packages)")
    output = client.containers.run(
        base, ["python3", "-c", _LIST_DISTS], network_mode="none", remove=True
    )
    listed: dict[str, str] = json.loads(output)
    have: dict[str, str] = {canonicalize_name(k): v for k, v in listed.items()}
    constraints = work / "base-constraints.txt"
    constraints.write_text(packages.record_text(have))
    wheels = work / "wheels"
    _pip("download", "-q", "-d", str(wheels), "-c", str(constraints), *_target_args(), *extra)
    new = [
        wheel
        for wheel in sorted(wheels.glob("*.whl"))
        if canonicalize_name(wheel.name.split("-")[0]) not in have
    ]
    site = work / "layer" / SITE
    if new:
        _pip(
            "install", "-q", "--no-index", "--no-deps", "--target", str(site), "--no-compile",
            *_target_args(), *map(str, new),
        )  # fmt: skip
    dists: dict[str, str] = {**have, **installed(site)} if site.exists() else have
    record = work / "layer" / packages.RECORD_PATH
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(packages.record_text(dists))
    base_specs = recorded_packages(client, base) or PYTHON_PACKAGES
    label = packages.label_value(packages.merged(base_specs, extra), dists)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for child in sorted((work / "layer").iterdir()):
            tar.add(child, arcname=child.name, filter=_root_owned)
    repository, _, version = tag.partition(":")
    container = client.containers.create(base, network_mode="none")
    try:
        container.put_archive("/", buffer.getvalue())
        container.commit(
            repository=repository,
            tag=version or "latest",
            changes=[f"LABEL {packages.LABEL}={label}"],
        )
    finally:
        container.remove(force=True)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode |= 0o444 if info.isfile() else 0o555  # readable by the session's nobody user
    return info
