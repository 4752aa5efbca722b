"""`assistd bundle create OUT`: the command line of server.bundle.create."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server import __version__
from server.bundle.wheels import DEFAULT_TORCH, HOST_PYTHON, IMAGE_PYTHON, TORCH_CPU_INDEX, Target


def add_parser(sub: Any, command: Callable[[Any, str, str], argparse.ArgumentParser]) -> None:
    """`assistd bundle create`; `command` makes a subcommand parser with the CLI's shared
    options and help format (defaults shown)."""
    bundle = command(sub, "bundle", "an offline bundle for an air-gapped site")
    bundle_sub = bundle.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    create = command(
        bundle_sub,
        "create",
        "write wheels, images, install.sh and a checksum manifest into OUT; run on a "
        "connected machine, carry OUT (or OUT.tar) to the site and run its install.sh there "
        "(docs/air-gapped.md)",
    )
    create.add_argument("out", type=Path, help="the bundle directory (new or empty)")
    create.add_argument(
        "--python-version",
        default=None,
        help="the offline machine's CPython, X.Y.Z as `python3 -V` prints it: packages may "
        f"need a later micro version (default: this one's, {HOST_PYTHON}; with "
        f"--with-image {IMAGE_PYTHON}, Debian 12's, which the image runs)",
    )
    create.add_argument(
        "--platform",
        action="append",
        default=[],
        help="target wheel platform tag, repeatable (manylinux_2_28_x86_64 ...); default: "
        "this machine's. With a foreign target every dependency must ship a wheel",
    )
    create.add_argument(
        "--torch", default=DEFAULT_TORCH, help=f"the PyTorch requirement (default {DEFAULT_TORCH})"
    )
    create.add_argument(
        "--torch-index",
        default=TORCH_CPU_INDEX,
        help="where torch comes from when pip's find-links have no matching wheel "
        "(default: PyTorch's CPU builds; '' for the configured index, which on Linux "
        "serves CUDA builds)",
    )
    create.add_argument(
        "--extras", default="postgres", help="assistd extras to include (default postgres)"
    )
    create.add_argument(
        "--constraint", type=Path, default=None, help="pip constraints file (pin versions)"
    )
    create.add_argument(
        "--sandbox-image", default=None, help="sandbox image tag (default ASSISTD_SANDBOX_IMAGE)"
    )
    create.add_argument(
        "--sandbox-packages",
        default=None,
        help="extra Python packages for the sandbox image, comma-separated (added as a "
        "layer when the image exists; ASSISTD_SANDBOX_PACKAGES_FILE adds more)",
    )
    create.add_argument("--no-sandbox", action="store_true", help="leave the sandbox image out")
    create.add_argument(
        "--with-image", action="store_true", help="add the assistd server image too"
    )
    create.add_argument("--server-image", default=None, help="its tag (default assistd:VERSION)")
    create.add_argument("--tar", action="store_true", help="also write OUT.tar and its SHA-256")
    create.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    create.set_defaults(func=_create)


def _create(args: argparse.Namespace) -> int:
    from sandbox import packages
    from server.bundle.create import Options, create
    from server.bundle.wheels import WheelError
    from server.config import Settings

    try:
        extra = packages.requested(args.sandbox_packages)
    except packages.PackageSpecError as exc:
        print(f"assistd: {exc}", file=sys.stderr)
        return 2
    # The server image's Python is Debian 12's 3.11.2: resolve for it unless told.
    default_python = IMAGE_PYTHON if args.with_image else HOST_PYTHON
    target = Target(args.python_version or default_python, tuple(args.platform))
    opts = Options(
        out=args.out,
        target=target,
        torch=args.torch,
        torch_index=args.torch_index or None,
        extras=tuple(e.strip() for e in args.extras.split(",") if e.strip()),
        constraints=args.constraint,
        sandbox=not args.no_sandbox,
        sandbox_image=args.sandbox_image or Settings.from_env().sandbox.image,
        sandbox_packages=tuple(extra),
        with_image=args.with_image,
        server_image=args.server_image or f"assistd:{__version__}",
        tar=args.tar,
        force=args.force,
    )
    try:
        result = create(opts)
    except (FileExistsError, WheelError) as exc:
        print(f"assistd: {exc}", file=sys.stderr)
        return 1
    print(f"assistd: bundle written: {result}")
    print(f"assistd: on the offline machine: {args.out.resolve() / 'install.sh'}")
    return 0
