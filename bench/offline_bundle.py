"""Offline bundle: its size, and how long install.sh takes against a connected install.

1. `assistd bundle create` with the sandbox image this daemon already has (so the time
   is the wheels, the image save and the manifest, not an mmdebstrap build), `--tar`.
   Sizes of each part.
2. install.sh into a fresh prefix, byte-compiled (the default), and again with
   `--no-compile`; then re-run on the first prefix (the upgrade path, nothing to change).
   Each verifies the checksums, installs, loads the image, migrates and (but the last)
   makes its trial start; the prefix's venv size is reported.
3. Baseline, in the same run: the same pinned package set installed the connected way
   (`python -m venv` + `pip install -r requirements.txt` from the index, pip's cache warm
   after step 1), byte-compiled like the default.

Needs a Docker daemon with the sandbox image (`assistd sandbox build`). Prints numbers;
asserts nothing.

    .venv/bin/python bench/offline_bundle.py      # ~8 min on 2 cores
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.monotonic() - started


def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        work = Path(tmp)
        out = work / "assistd-bundle"
        create = timed([sys.executable, "-m", "server", "bundle", "create", str(out), "--tar"],
                       cwd=REPO)  # fmt: skip
        info = json.loads((out / "bundle.json").read_text())
        torch = next((out / "wheels").glob("torch-*.whl"))
        print(
            f"bundle create: {create:.0f} s "
            f"({info['wheels']} wheels, image {info['sandbox_image']})"
        )
        rows = [
            ("wheels/", size_mb(out / "wheels")),
            ("  of which torch (CPU)", size_mb(torch)),
            ("images/sandbox.tar", size_mb(out / "images" / "sandbox.tar")),
            ("whole directory", size_mb(out)),
            ("OUT.tar", size_mb(out.with_name(out.name + ".tar"))),
        ]
        for name, mb in rows:
            print(f"  {name:<24} {mb:8.0f} MB")

        installs = {}
        for label, extra in (("compiled", []), ("no-compile", ["--no-compile"])):
            prefix = work / f"prefix-{label}"
            installs[label] = timed(
                ["bash", str(out / "install.sh"), "--prefix", str(prefix), *extra]
            )
            print(
                f"install.sh ({label}): {installs[label]:.0f} s, "
                f"venv {size_mb(prefix / 'venv'):.0f} MB"
            )
        upgrade = timed(["bash", str(out / "install.sh"), "--prefix", str(work / "prefix-compiled"),
                         "--no-check"])  # fmt: skip
        print(
            "install.sh again on the compiled prefix (upgrade path, no trial start): "
            f"{upgrade:.0f} s"
        )
        shutil.rmtree(work / "prefix-no-compile")

        venv = work / "online-venv"
        started = time.monotonic()
        timed([sys.executable, "-m", "venv", str(venv)])
        timed([str(venv / "bin" / "pip"), "install", "-q", "-r", str(out / "requirements.txt"),
               "--find-links", str(out / "wheels"), "--no-index"])  # fmt: skip
        baseline_local = time.monotonic() - started
        shutil.rmtree(venv)
        started = time.monotonic()
        timed([sys.executable, "-m", "venv", str(venv)])
        wanted = [
            line for line in (out / "requirements.txt").read_text().splitlines()
            if not line.startswith("assistd")
        ]  # fmt: skip
        requirements = work / "online-requirements.txt"
        requirements.write_text("\n".join(wanted) + "\n")
        timed([str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)])
        baseline_online = time.monotonic() - started
        print(
            f"baseline, the same packages without the bundle's checks, images or trial start: "
            f"pip from the bundle's wheels {baseline_local:.0f} s; pip from the index "
            f"(all but assistd) {baseline_online:.0f} s"
        )
        print(
            "install.sh (compiled) / pip from the index: "
            f"x{installs['compiled'] / baseline_online:.2f}"
        )


if __name__ == "__main__":
    main()
