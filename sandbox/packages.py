"""Which Python packages a sandbox image holds: the site's choice going in, the record
coming out.

A site adds packages its users' code needs (`assistd sandbox build --packages
scikit-learn,sympy`, or a requirements-style file named by ASSISTD_SANDBOX_PACKAGES_FILE).
The image records what it got twice: a label (the requested packages with the versions
installed, read by the server without starting a container) and a file listing every
distribution in it (for people, and for building a layer on top).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# What every image has: the hosted code interpreter's usual data stack.
DEFAULT_PACKAGES = ["numpy", "pandas", "matplotlib", "scipy", "openpyxl", "sympy", "tabulate"]
LABEL = "assistd.sandbox.packages"
RECORD_PATH = "etc/assistd-sandbox/packages.txt"  # inside the image, relative to /
FILE_ENV = "ASSISTD_SANDBOX_PACKAGES_FILE"


class PackageSpecError(ValueError):
    """A package the site asked for is not a plain requirement (name, extras, version)."""


def parse(text: str) -> list[str]:
    """Requirements from a comma list or a requirements-style file (one per line, `#`
    comments). Only named requirements: no URLs, paths or pip options, since each is
    fetched from the index by name."""
    specs: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for item in line.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                req = Requirement(item)
            except InvalidRequirement as exc:
                raise PackageSpecError(f"not a package requirement: {item!r} ({exc})") from exc
            if req.url or item.startswith("-"):
                raise PackageSpecError(f"only named packages from the index: {item!r}")
            specs.append(str(req))
    return specs


def requested(cli: str | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """The extra packages asked for: the CLI list, then the file the environment names."""
    env = os.environ if env is None else env
    specs = parse(cli or "")
    path = env.get(FILE_ENV)
    if path:
        try:
            specs += parse(Path(path).read_text())
        except OSError as exc:
            raise PackageSpecError(f"{FILE_ENV}={path}: {exc.strerror or exc}") from exc
    return specs


def merged(*groups: Iterable[str]) -> list[str]:
    """Requirements in order, one per distribution name (a later spec replaces an earlier
    one of the same name, so `numpy<2` given by a site wins over the default `numpy`)."""
    by_name: dict[str, str] = {}
    for group in groups:
        for spec in group:
            name = canonicalize_name(Requirement(spec).name)
            by_name.pop(name, None)
            by_name[name] = spec
    return list(by_name.values())


def names(specs: Iterable[str]) -> list[str]:
    return [canonicalize_name(Requirement(spec).name) for spec in specs]


def label_value(specs: Iterable[str], installed: Mapping[str, str]) -> str:
    """`numpy==2.3.1,scikit-learn==1.7.0`: each requested package with the version the
    image got (`installed` maps canonical names to versions)."""
    out = []
    for name in dict.fromkeys(names(specs)):
        version = installed.get(name)
        out.append(f"{name}=={version}" if version else name)
    return ",".join(out)


def from_label(value: str | None) -> list[str] | None:
    """The label back as a list; None for an image built before packages were recorded."""
    if not value:
        return None
    return [item for item in value.split(",") if item]


def describe(recorded: list[str] | None) -> str:
    """The packages as the model and the start-up log read them: `numpy 2.3.1, ...`."""
    if recorded is None:
        return "numpy, pandas, matplotlib and scipy"
    return ", ".join(item.replace("==", " ") for item in recorded)


def record_text(installed: Mapping[str, str]) -> str:
    """The in-image record: every distribution, `name==version`, sorted."""
    return "".join(f"{name}=={installed[name]}\n" for name in sorted(installed))


def missing(specs: Iterable[str], recorded: list[str] | None) -> list[str]:
    """Requested packages an image's label does not list (an unlabelled image counts as
    having only the defaults)."""
    have = set(names(recorded if recorded is not None else DEFAULT_PACKAGES))
    return [spec for spec in specs if names([spec])[0] not in have]
