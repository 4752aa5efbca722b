"""The bundle's checksum manifest: `sha256sum` format, so install.sh and an operator
check it with coreutils alone (`sha256sum -c SHA256SUMS`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

NAME = "SHA256SUMS"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write(root: Path) -> Path:
    """Hash every file under `root` (but the manifest itself) into root/SHA256SUMS."""
    lines = [
        f"{sha256(path)}  {path.relative_to(root).as_posix()}\n"
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() != NAME
    ]
    manifest = root / NAME
    manifest.write_text("".join(lines))
    return manifest


def verify(root: Path) -> list[str]:
    """Problems found: files changed, missing, or present but not listed. Empty when the
    directory is exactly what the manifest says."""
    listed: dict[str, str] = {}
    for line in (root / NAME).read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = []
    for name, digest in sorted(listed.items()):
        path = root / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif sha256(path) != digest:
            problems.append(f"changed: {name}")
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_file() and name != NAME and name not in listed:
            problems.append(f"not in the manifest: {name}")
    return problems
