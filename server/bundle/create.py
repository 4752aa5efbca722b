"""Write an offline bundle: wheels, images, install.sh, README, manifest, optional tar.

Layout of OUT:
    install.sh, README.md   installer and the operator's notes (templates next to this file)
    bundle.json             what is inside: versions, target, images, sandbox packages
    requirements.txt        every wheel pinned; install.sh installs exactly this set
    wheels/                 assistd, torch and every other dependency
    images/sandbox.tar      the sandbox image (`docker save`)
    images/server.tar       the assistd server image, with --with-image
    SHA256SUMS              SHA-256 of every file above
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker

from server import __version__
from server.bundle import manifest, server_image
from server.bundle.wheels import (
    DEFAULT_TORCH,
    IMAGE_PYTHON,
    TORCH_CPU_INDEX,
    Target,
    WheelError,
    assistd_wheel,
    pins,
    resolve,
    torch_wheel,
)

log = logging.getLogger("assistd.bundle")
HERE = Path(__file__).parent


@dataclass(frozen=True)
class Options:
    out: Path
    target: Target = field(default_factory=Target)
    torch: str = DEFAULT_TORCH
    torch_index: str | None = TORCH_CPU_INDEX
    extras: tuple[str, ...] = ("postgres",)
    constraints: Path | None = None
    sandbox: bool = True
    sandbox_image: str = "assistd-sandbox:1"
    sandbox_packages: tuple[str, ...] = ()
    with_image: bool = False
    server_image: str = f"assistd:{__version__}"
    tar: bool = False
    force: bool = False


def create(opts: Options) -> Path:
    """Write the bundle; returns OUT (or OUT.tar with `tar`)."""
    out = opts.out.resolve()
    if opts.with_image and not _image_can_install(opts.target):
        raise WheelError(
            f"--with-image installs the wheels into Debian 12's Python {IMAGE_PYTHON}, but "
            f"they are resolved for {opts.target.python_version} on "
            f"{', '.join(opts.target.platforms) or 'this machine'}: leave --python-version "
            "and --platform out, or make the image in a bundle of its own"
        )
    _prepare(out, opts.force)
    wheels = out / "wheels"
    wheels.mkdir()
    started = time.monotonic()

    log.info("bundle: building the assistd wheel")
    own = assistd_wheel(wheels)
    log.info("bundle: fetching %s", opts.torch)
    torch = torch_wheel(opts.torch, opts.torch_index, wheels, opts.target)
    extras = f"[{','.join(opts.extras)}]" if opts.extras else ""
    torch_pin = f"torch=={pins(wheels)['torch']}"
    log.info("bundle: resolving every dependency for Python %s", opts.target.python_version)
    resolve(wheels, [f"{own}{extras}", torch_pin, "pip"], opts.target, opts.constraints)
    pinned = pins(wheels)
    lines = [f"assistd{extras}=={pinned.pop('assistd')}"]
    lines += [f"{name}=={version}" for name, version in sorted(pinned.items())]
    (out / "requirements.txt").write_text("\n".join(lines) + "\n")

    info: dict[str, object] = {
        "assistd": __version__,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": opts.target.minor,
        "python_resolved_for": opts.target.python_version,
        "platforms": list(opts.target.platforms) or ["this machine's"],
        "extras": list(opts.extras),
        "torch": torch.name,
        "wheels": len(lines),
        "sandbox_image": None,
        "sandbox_packages": None,
        "server_image": None,
    }
    if opts.sandbox or opts.with_image:
        client = docker.from_env(timeout=600)
        (out / "images").mkdir()
        if opts.sandbox:
            info["sandbox_packages"] = _sandbox(client, opts)
            info["sandbox_image"] = opts.sandbox_image
            _save(client, opts.sandbox_image, out / "images" / "sandbox.tar")
        if opts.with_image:
            log.info("bundle: building the server image %s from the wheels", opts.server_image)
            server_image.build(wheels, out / "requirements.txt", opts.server_image, client)
            info["server_image"] = opts.server_image
            _save(client, opts.server_image, out / "images" / "server.tar")

    (out / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.copy2(HERE / "README.md", out / "README.md")
    shutil.copy2(HERE / "install.sh", out / "install.sh")
    (out / "install.sh").chmod(0o755)
    manifest.write(out)
    sizes = {
        name: sum(p.stat().st_size for p in (out / name).rglob("*") if p.is_file())
        for name in ("wheels", "images")
        if (out / name).exists()
    }
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log.info(
        "bundle: %s written in %.0f s: %s, %.0f MB in all; SHA256SUMS %s",
        out,
        time.monotonic() - started,
        ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in sizes.items()),
        total / 1e6,
        manifest.sha256(out / manifest.NAME),
    )
    if not opts.tar:
        return out
    archive = out.with_name(out.name + ".tar")
    with tarfile.open(archive, "w") as tar:
        tar.add(out, arcname=out.name)
    digest = manifest.sha256(archive)
    archive.with_name(archive.name + ".sha256").write_text(f"{digest}  {archive.name}\n")
    log.info("bundle: %s (%.0f MB), SHA-256 %s", archive, archive.stat().st_size / 1e6, digest)
    return archive


def _image_can_install(target: Target) -> bool:
    """Wheels resolved for `target` install on the image's Python 3.11.2 on this machine."""
    version = tuple(int(part) for part in target.python_version.split("."))
    return not target.platforms and target.minor == "3.11" and version <= (3, 11, 2)


def _prepare(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty (--force replaces it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _sandbox(client: docker.DockerClient, opts: Options) -> list[str] | None:
    """The sandbox image, built when missing, or given a layer with the packages asked
    for that it lacks; returns the packages it records."""
    from sandbox import image, packages

    tag, extra = opts.sandbox_image, list(opts.sandbox_packages)
    if not image.image_exists(client, tag):
        log.info("bundle: building the sandbox image %s (Debian mirror and PyPI)", tag)
        image.build(tag, extra=extra)
    elif wanted := packages.missing(extra, image.recorded_packages(client, tag)):
        log.info("bundle: adding %s to the sandbox image %s", ", ".join(wanted), tag)
        image.build(tag, extra=wanted, base=tag)
    return image.recorded_packages(client, tag)


def _save(client: docker.DockerClient, tag: str, path: Path) -> None:
    log.info("bundle: saving %s", tag)
    chunks: Iterator[bytes] = client.images.get(tag).save(named=tag)
    with path.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
