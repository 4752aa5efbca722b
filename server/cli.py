"""assistd: an OpenAI Assistants API v2 server. Commands: serve, worker, migrate, keys,
sandbox, models, usage, doctor and bundle, and the client command ingest."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server import __version__, cli_ops
from server.config import Settings
from server.observability import logs

if TYPE_CHECKING:
    from sqlalchemy import Engine


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _models_config_ok(settings: Settings) -> bool:
    """MODELS_CONFIG checked before the app is built: False (after one line per problem on
    stderr) when the file cannot be used, instead of a traceback from the app's start-up
    (which reads the file again when it builds its ModelClient from Settings)."""
    from server.models_config import ModelsConfigError
    from server.models_config import load as load_models_config

    if settings.models_config is None:
        return True
    try:
        load_models_config(settings.models_config)
    except ModelsConfigError as exc:
        for line in str(exc).splitlines():
            print(f"assistd: {line}", file=sys.stderr)
        return False
    return True


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    settings = Settings.from_env()
    if not _models_config_ok(settings):
        return 2
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
        log_config=None,  # ours (server/observability/logs.py), set up in main()
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

    settings = Settings.from_env()
    if not _models_config_ok(settings):
        return 2
    app = create_app(settings)

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


def _log_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """--log-level / --log-format, accepted before or after the subcommand. Subcommands
    default to SUPPRESS so that they do not overwrite a value given before them."""
    env_level = os.environ.get("ASSISTD_LOG_LEVEL", "info").lower()
    env_format = os.environ.get("ASSISTD_LOG_FORMAT", "text").lower()
    # ArgumentDefaultsHelpFormatter leaves SUPPRESS out: say the default ourselves.
    level_default = "" if defaults else f" (default: {env_level})"
    format_default = "" if defaults else f" (default: {env_format})"
    parser.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        type=str.lower,
        default=env_level if defaults else argparse.SUPPRESS,
        help="log level of assistd and uvicorn; libraries log warnings only, unless debug "
        f"(env ASSISTD_LOG_LEVEL){level_default}",
    )
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        type=str.lower,
        default=env_format if defaults else argparse.SUPPRESS,
        help="text, or one JSON object per line with request_id, project and run_id "
        f"(env ASSISTD_LOG_FORMAT){format_default}",
    )


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in every option's help."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistd", description=__doc__, formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"assistd {__version__}")
    _log_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _log_options(common, defaults=False)

    def command(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(  # type: ignore[no-any-return]
            name, help=help_text, description=help_text, parents=[common], formatter_class=_Help
        )

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = command(sub, "serve", "run the HTTP API (and the worker loop)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve.add_argument("--port", type=int, default=8000, help="port to bind")
    serve.add_argument(
        "--allow-insecure", action="store_true", help="bind beyond loopback without API keys"
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="log each request (with its request id and project)",
    )
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="serve the API only; runs are executed by `assistd worker` processes "
        "(a streaming request still executes its own run)",
    )
    serve.set_defaults(func=_serve)
    worker = command(sub, "worker", "execute runs only (no HTTP); pairs with serve --no-worker")
    worker.set_defaults(func=_worker)
    mig = command(sub, "migrate", "apply database migrations and exit")
    mig.set_defaults(func=_migrate)
    keys = command(sub, "keys", "API keys stored in the database")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = command(keys_sub, "create", "make a key; printed once, only its hash kept")
    create.add_argument("--project", required=True, help="the project the key's callers act in")
    create.set_defaults(func=_keys_create)
    listing = command(keys_sub, "list", "every key: id, prefix, project, created, revoked")
    listing.set_defaults(func=_keys_list)
    revoke = command(keys_sub, "revoke", "refuse a key from now on (within seconds)")
    revoke.add_argument("key", help="the key's id (key_...), its listed prefix, or the key")
    revoke.set_defaults(func=_keys_revoke)
    doctor = command(sub, "doctor", "find and repair rows the API cannot read back")
    doctor.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    doctor.set_defaults(func=_doctor)
    from server import ingest_client

    ingest_client.add_parser(sub, [common])
    sandbox = command(sub, "sandbox", "the code-interpreter sandbox image")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    build = command(sandbox_sub, "build", "build the image without a registry")
    build.add_argument("--if-missing", action="store_true", help="do nothing if it exists")
    build.add_argument("--tag", default=None, help="image tag (default: ASSISTD_SANDBOX_IMAGE)")
    build.add_argument(
        "--packages",
        default=None,
        help="extra Python packages, comma-separated (scikit-learn,sympy); more come from "
        "the requirements file named by ASSISTD_SANDBOX_PACKAGES_FILE",
    )
    build.add_argument(
        "--base", default=None, help="add the packages as a layer over this existing image"
    )
    build.set_defaults(func=_sandbox_build)
    status = command(sandbox_sub, "status", "can code_interpreter run here?")
    status.set_defaults(func=_sandbox_status)
    cli_ops.add_commands(sub, command)
    from server.bundle.cli import add_parser as add_bundle_parser

    add_bundle_parser(sub, command)
    return parser


def _doctor(args: argparse.Namespace) -> int:
    """Rows holding unpaired surrogates or NaN (stored before requests were checked)
    make every list that meets them fail; this rewrites them (server/doctor.py)."""
    from server.doctor import diagnose

    engine = _keys_engine()
    if engine is None:
        return 1
    try:
        repairs = diagnose(engine, dry_run=args.dry_run)
    finally:
        engine.dispose()
    for item in repairs:
        print(("would repair " if args.dry_run else "repaired ") + item.describe())
    done = "to repair" if args.dry_run else "repaired"
    print(f"assistd doctor: {len(repairs)} value(s) {done}")
    return 0


def _sandbox_build(args: argparse.Namespace) -> int:
    from sandbox import image, packages

    tag = args.tag or Settings.from_env().sandbox.image
    try:
        extra = packages.requested(args.packages)
    except packages.PackageSpecError as exc:
        print(f"assistd: {exc}", file=sys.stderr)
        return 2
    if args.base and not extra:
        print("assistd: --base adds packages: name them with --packages", file=sys.stderr)
        return 2
    built = image.build(tag, if_missing=args.if_missing, extra=extra, base=args.base)
    import docker

    recorded = image.recorded_packages(docker.from_env(), tag)
    state = "built" if built else "already present"
    print(f"assistd: sandbox image {tag} {state}; Python packages: {packages.describe(recorded)}")
    return 0


def _sandbox_status(_: argparse.Namespace) -> int:
    from sandbox.sessions import SandboxManager

    usable, detail = SandboxManager(Settings.from_env().sandbox).status()
    print(f"code_interpreter: {'ready' if usable else 'unavailable'}: {detail}")
    return 0 if usable else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    if getattr(args, "func", None) is None:  # `assistd` alone: what can it do?
        parser.print_help()
        return 0
    return int(args.func(args))
