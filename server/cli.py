"""`assistd` command line: serve, worker, migrate and sandbox."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import sys

from server.config import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    settings = Settings.from_env()
    if args.no_worker:
        settings = dataclasses.replace(settings, run_worker=False)
    if not settings.auth_required and not _is_loopback(args.host) and not args.allow_insecure:
        print(
            f"assistd: refusing to listen on {args.host} without ASSISTD_API_KEYS: anyone who "
            "can reach it could read every thread. Set ASSISTD_API_KEYS, bind 127.0.0.1, "
            "or pass --allow-insecure.",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def _worker(_: argparse.Namespace) -> int:
    """Only the worker loop: claims and executes runs, serves no HTTP. Stops on SIGTERM
    or SIGINT after the grace period (in-flight runs finish or are handed back)."""
    import asyncio
    import signal

    from server.app import create_app

    app = create_app(Settings.from_env())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with app.router.lifespan_context(app):
            await stop.wait()

    asyncio.run(main())
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from server.db import migrate

    settings = Settings.from_env()
    migrate(settings.database_url)
    print(f"assistd: schema is current ({settings.database_url.split('@')[-1]})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--allow-insecure", action="store_true", help="bind beyond loopback without API keys"
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False)
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="serve the API only; runs are executed by `assistd worker` processes "
        "(a streaming request still executes its own run)",
    )
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="execute runs only (no HTTP); pairs with --no-worker")
    worker.set_defaults(func=_worker)
    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.set_defaults(func=_migrate)
    sandbox = sub.add_parser("sandbox", help="the code-interpreter sandbox image")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    build = sandbox_sub.add_parser("build", help="build the image without a registry")
    build.add_argument("--if-missing", action="store_true", help="do nothing if it exists")
    build.add_argument("--tag", default=None, help="image tag (default ASSISTD_SANDBOX_IMAGE)")
    build.set_defaults(func=_sandbox_build)
    status = sandbox_sub.add_parser("status", help="can code_interpreter run here?")
    status.set_defaults(func=_sandbox_status)
    return parser


def _sandbox_build(args: argparse.Namespace) -> int:
    from sandbox import image

    tag = args.tag or Settings.from_env().sandbox.image
    built = image.build(tag, if_missing=args.if_missing)
    print(f"assistd: sandbox image {tag} {'built' if built else 'already present'}")
    return 0


def _sandbox_status(_: argparse.Namespace) -> int:
    from sandbox.sessions import SandboxManager

    usable, detail = SandboxManager(Settings.from_env().sandbox).status()
    print(f"code_interpreter: {'ready' if usable else 'unavailable'}: {detail}")
    return 0 if usable else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    return int(args.func(args))
