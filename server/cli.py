"""`assistd` command line: serve, worker, migrate, keys, sandbox, and the client command
ingest."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import ipaddress
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from server.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


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
    if not _is_loopback(args.host) and not args.allow_insecure and not _keys_configured(settings):
        print(
            f"assistd: refusing to listen on {args.host} without API keys: anyone who can "
            "reach it could read every thread. Set ASSISTD_API_KEYS or run `assistd keys "
            "create --project NAME`, bind 127.0.0.1, or pass --allow-insecure.",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        # uvicorn annotates this int, and takes any number of seconds (call_later).
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
    )
    return 0


def _keys_configured(settings: Settings) -> bool:
    """Env keys or any key row in the database: then the server requires a key, the same
    rule `deps.current_project` applies."""
    if settings.auth_required:
        return True
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False  # the first start: nothing to read, and nothing to create yet
    from server.api_keys import database_has_keys
    from server.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        return database_has_keys(engine)
    finally:
        engine.dispose()


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


def _keys_engine() -> Engine | None:
    """The configured database for `keys list` and `keys revoke`, which never change the
    schema (only `keys create`, `serve`, `worker` and `migrate` apply migrations): without
    a schema, or without a database to reach, they say so and return None."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError

    from server.db import make_engine
    from server.models import ApiKey

    url = Settings.from_env().database_url
    where = url.split("@")[-1]
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        has_table = False  # connecting would create an empty file
    else:
        engine = make_engine(url)
        try:
            has_table = inspect(engine).has_table(ApiKey.__tablename__)
        except OperationalError as exc:
            engine.dispose()
            reason = str(exc.orig or exc).strip().splitlines()[0]
            print(f"assistd: cannot reach the database {where}: {reason}", file=sys.stderr)
            return None
        if has_table:
            return engine
        engine.dispose()
    print(
        f"assistd: the database {where} has no assistd schema (no {ApiKey.__tablename__} "
        "table). Run `assistd migrate` first (or `assistd keys create`, which migrates).",
        file=sys.stderr,
    )
    return None


def _keys_create(args: argparse.Namespace) -> int:
    from server.api_keys import create_key
    from server.db import make_engine, migrate

    project = args.project.strip()
    if not project or len(project) > 128:
        print("assistd: --project must be 1 to 128 characters", file=sys.stderr)
        return 2
    # Migrates first: a key may be made before the first `serve` (compose runs it in the
    # one-shot migrate container).
    settings = Settings.from_env()
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        row, key = create_key(engine, project)
    finally:
        engine.dispose()
    # The key alone on stdout (KEY=$(assistd keys create ...)); the note on stderr.
    print(key)
    print(
        f"assistd: created {row.id} ({row.prefix}...) for project {row.project!r}. "
        "This is the only time the key is shown; only its hash is stored.",
        file=sys.stderr,
    )
    return 0


def _keys_list(_: argparse.Namespace) -> int:
    from server.api_keys import list_keys

    engine = _keys_engine()
    if engine is None:
        return 1
    try:
        rows = list_keys(engine)
    finally:
        engine.dispose()
    print(f"{'id':<28} {'prefix':<22} {'project':<20} {'created':<20} revoked")
    for row in rows:
        revoked = _utc(row.revoked_at) if row.revoked_at is not None else "-"
        print(
            f"{row.id:<28} {row.prefix + '...':<22} {row.project:<20} "
            f"{_utc(row.created_at):<20} {revoked}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from server.api_keys import CACHE_SECONDS, KeyNotFound, revoke_key

    engine = _keys_engine()
    if engine is None:
        return 1
    try:
        row = revoke_key(engine, args.key)
    except KeyNotFound as exc:
        print(f"assistd: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(
        f"assistd: revoked {row.id} ({row.prefix}...) of project {row.project!r} at "
        f"{_utc(row.revoked_at or 0)}; every server refuses it within {CACHE_SECONDS:g} s"
    )
    return 0


def _utc(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    keys = sub.add_parser("keys", help="API keys stored in the database")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="make a key; printed once, only its hash kept")
    create.add_argument("--project", required=True, help="the project the key's callers act in")
    create.set_defaults(func=_keys_create)
    listing = keys_sub.add_parser("list", help="every key: id, prefix, project, created, revoked")
    listing.set_defaults(func=_keys_list)
    revoke = keys_sub.add_parser("revoke", help="refuse a key from now on (within seconds)")
    revoke.add_argument("key", help="the key's id (key_...), its listed prefix, or the key")
    revoke.set_defaults(func=_keys_revoke)
    from server import ingest_client

    ingest_client.add_parser(sub)
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
