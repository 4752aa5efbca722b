"""The bundle's wheel set: pip options for a foreign target, and pins that leave pip no
choice on the offline side."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from server.bundle.wheels import Target, WheelError, pins


def test_this_interpreter_needs_no_target_options_and_a_foreign_one_only_wheels() -> None:
    assert Target().is_host and Target().pip_args() == []
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    arm = Target(here, ("manylinux_2_28_aarch64",))
    assert not arm.is_host
    args = Target("3.13", ("manylinux_2_28_aarch64", "manylinux2014_aarch64")).pip_args()
    assert args[:3] == ["--only-binary=:all:", "--python-version", "3.13"]
    assert args[5:7] == ["--abi", "cp313"] and "abi3" in args and "none" in args
    assert args.count("--platform") == 2
    debian = Target("3.11.2")  # a micro version of its own: Requires-Python may differ
    assert debian.minor == "3.11" and debian.pip_args()[5:7] == ["--abi", "cp311"]


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"")


def test_pins_name_every_wheel_once(tmp_path: Path) -> None:
    touch(tmp_path, "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
    touch(tmp_path, "Scikit_Learn-1.9.1-cp311-cp311-manylinux_2_17_x86_64.whl")
    assert pins(tmp_path) == {"torch": "2.13.0+cpu", "scikit-learn": "1.9.1"}


def test_two_versions_or_an_sdist_cannot_go_offline(tmp_path: Path) -> None:
    touch(tmp_path, "six-1.16.0-py2.py3-none-any.whl", "six-1.17.0-py2.py3-none-any.whl")
    with pytest.raises(WheelError, match="two versions of six"):
        pins(tmp_path)
    (tmp_path / "six-1.16.0-py2.py3-none-any.whl").unlink()
    touch(tmp_path, "legacy-1.0.tar.gz")
    with pytest.raises(WheelError, match="legacy-1.0.tar.gz"):
        pins(tmp_path)
