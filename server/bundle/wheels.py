"""Wheels for assistd and everything it imports, for the target interpreter and platform.

pip does the resolving. For this machine's own interpreter `pip wheel` is used, so an
sdist-only dependency becomes a wheel too; for another target (`--python-version`,
`--platform`) `pip download --only-binary=:all:`, since nothing can be built for it here.
PyTorch is fetched first and on its own: a local wheel from pip's find-links when there is
one, else from PyTorch's CPU index (PyPI's Linux torch is a CUDA build of several GB).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

SOURCE = Path(__file__).resolve().parents[2]  # the checkout holding pyproject.toml
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DEFAULT_TORCH = "torch==2.13.0"  # the release scripts/setup installs and CI tests with


class WheelError(RuntimeError):
    """pip could not provide a wheel the bundle needs."""


HOST_PYTHON = "{}.{}.{}".format(*sys.version_info[:3])
# Debian 12's python3, the interpreter of the --with-image server image.
IMAGE_PYTHON = "3.11.2"


@dataclass(frozen=True)
class Target:
    """The interpreter the bundle installs into: this one unless told otherwise. Its
    micro version matters: packages' Requires-Python exclude older ones (soupsieve needs
    3.11.5, so a bundle resolved on 3.11.7 does not install on Debian 12's 3.11.2)."""

    python_version: str = HOST_PYTHON
    platforms: tuple[str, ...] = ()

    @property
    def is_host(self) -> bool:
        return self.python_version == HOST_PYTHON and not self.platforms

    @property
    def minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    def pip_args(self) -> list[str]:
        if self.is_host:
            return []
        abi = "cp" + self.minor.replace(".", "")
        args = ["--only-binary=:all:", "--python-version", self.python_version]
        args += ["--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
        for tag in self.platforms:
            args += ["--platform", tag]
        return args


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        raise WheelError(f"pip {args[0]} failed: {' '.join(errors[-3:]) or result.stderr[-500:]}")


def assistd_wheel(dest: Path) -> Path:
    """Build assistd's own wheel from a copy of the checkout (the tree stays clean)."""
    if not (SOURCE / "pyproject.toml").is_file():
        raise WheelError(f"no assistd source tree at {SOURCE}: run bundle create from a checkout")
    with tempfile.TemporaryDirectory(prefix="assistd-src-") as tmp:
        src = Path(tmp) / "assistd"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(SOURCE / name, src / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in ("server", "sandbox", "retrieval"):
            shutil.copytree(SOURCE / package, src / package, ignore=ignore)
        try:  # setuptools of this environment: no index round trip
            _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest), str(src))
        except WheelError:
            _pip("wheel", "-q", "--no-deps", "-w", str(dest), str(src))
    return _one(dest, "assistd")


def torch_wheel(spec: str, index: str | None, dest: Path, target: Target) -> Path:
    """`spec` from pip's find-links (a wheel on this disk) if there, else from `index`
    (PyTorch's CPU builds by default; None: the configured index, PyPI)."""
    common = ["download", "-q", "--no-deps", "-d", str(dest), *target.pip_args(), spec]
    try:
        _pip(*common, "--no-index")
    except WheelError:
        _pip(*common, *(["--index-url", index] if index else []))
    return _one(dest, "torch")


def resolve(dest: Path, requirements: list[str], target: Target, constraints: Path | None) -> None:
    """Every dependency of `requirements` into `dest`, which already holds the wheels
    built or fetched above (found there through --find-links)."""
    common = ["-q", "--find-links", str(dest), *target.pip_args()]
    if constraints is not None:
        common += ["-c", str(constraints)]
    if target.is_host:
        _pip("wheel", "-w", str(dest), *common, *requirements)
    else:
        _pip("download", "-d", str(dest), *common, *requirements)


def pins(dest: Path) -> dict[str, str]:
    """Canonical name -> version of each wheel in `dest`; two versions of one
    distribution would make the install ambiguous, so they are an error."""
    found: dict[str, str] = {}
    for wheel in sorted(dest.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        if found.get(name, str(version)) != str(version):
            raise WheelError(f"two versions of {name} in {dest}: {found[name]} and {version}")
        found[name] = str(version)
    leftovers = [p.name for p in dest.iterdir() if p.suffix != ".whl"]
    if leftovers:
        raise WheelError(f"not wheels, cannot be installed offline: {', '.join(leftovers)}")
    return found


def _one(dest: Path, name: str) -> Path:
    wanted = canonicalize_name(name)
    matches = [w for w in dest.glob("*.whl") if parse_wheel_filename(w.name)[0] == wanted]
    if len(matches) != 1:
        raise WheelError(f"expected one {name} wheel in {dest}, found {len(matches)}")
    return matches[0]
