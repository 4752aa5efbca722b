"""Application factory: wires settings, database, storage, error handling and routers."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from sandbox import image as sandbox_image
from sandbox import packages as sandbox_packages
from sandbox.sessions import SandboxManager
from server import __version__, docs_ui, openapi, slow_work, url_policy
from server.api_keys import KeyCache
from server.body_guard import BodyGuard
from server.config import Settings
from server.db import Database, make_engine, migrate
from server.errors import install_error_handlers
from server.inspector import page
from server.inspector.recorder import RunRecorder, purge_chore
from server.middleware import RequestId
from server.models_catalog import ModelCatalog
from server.observability.setup import Operations, log_routes
from server.routers import (
    assistants,
    files,
    health,
    inspect,
    messages,
    models,
    operations,
    runs,
    steps,
    threads,
    vector_store_files,
    vector_stores,
)
from server.runs.events import EventBus
from server.runs.model_client import ModelClient
from server.runs.observe import Observers
from server.runs.runner import Runner
from server.runs.worker import Chore, Worker, worker_name
from server.storage import BlobStore
from server.tools import code_interpreter
from server.tools.ingestion import Ingestor
from server.tools.registry import server_tools
from server.tools.search_service import SearchService
from server.v1compat import V1Compat

log = logging.getLogger("assistd")


async def start_sandbox(
    settings: Settings, engine: Engine
) -> tuple[SandboxManager | None, str | None, list[str] | None]:
    """The code-interpreter sandbox if Docker and the image are there, else why not, and
    the Python packages the image records (None for an image that records none). Said
    once at start-up; runs asking for code_interpreter then fail with the reason. Its
    upkeep ends the sessions of deleted threads and of projects without a usable key."""
    if not settings.sandbox_enabled:
        log.info("code_interpreter: off (ASSISTD_SANDBOX=off)")
        return None, "turned off (ASSISTD_SANDBOX=off)", None
    manager = SandboxManager(settings.sandbox)
    usable, detail = await asyncio.to_thread(manager.status)
    if not usable:
        log.warning("code_interpreter: unavailable: %s", detail)
        return None, detail, None
    recorded = await asyncio.to_thread(
        sandbox_image.recorded_packages, manager.client, settings.sandbox.image
    )
    log.info(
        "code_interpreter: ready (%s); Python packages: %s%s",
        detail,
        sandbox_packages.describe(recorded),
        "" if recorded is not None else " (the image records none; the defaults assumed)",
    )
    manager.start(gone=functools.partial(code_interpreter.ended_keys, engine, settings))
    return manager, None, recorded


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()
    ops = Operations(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Sync routes run on anyio's default thread pool: 40 threads unless told, and
        # threads beyond the CPUs cost more than they give (config.usable_cpus).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        app.state.slow_limiter = slow_work.make_limiter()
        if run_migrations:
            migrate(settings.database_url)
        app.state.engine = engine = make_engine(settings.database_url)
        db = Database(engine)
        app.state.key_cache = KeyCache(engine, settings.api_keys)
        app.state.blobs = blobs = BlobStore(settings.files_dir)
        await asyncio.to_thread(blobs.sweep)  # temp files of killed uploads
        app.state.bus = bus = EventBus()
        sandbox, problem, recorded = await start_sandbox(settings, engine)
        app.state.sandbox, app.state.sandbox_status = sandbox, problem or "ok"
        app.state.search = search = SearchService(settings)
        tools = server_tools(
            settings,
            sandbox=sandbox,
            sandbox_problem=problem,
            sandbox_packages=recorded,
            blobs=blobs,
            search=search,
        )
        owner = worker_name()
        # Metrics, traces, usage and the inspector's model-call log observe runs here.
        app.state.observers = observers = Observers()
        client = ModelClient(settings)
        app.state.catalog = ModelCatalog(settings, client)
        ops.observe(observers, db, client)
        app.state.runner = runner = Runner(db, settings, bus, client, owner, tools, observers)
        # Without the worker loop this process still executes the runs it streams.
        chores: list[Chore] = []
        recorder = None
        if settings.model_call_log:  # the inspector's run records
            recorder = RunRecorder(db, settings, client)
            observers.add(recorder)
            purge = purge_chore(db, settings)
            chores += [purge] if purge else []
        ingestor = Ingestor(db, settings, search, blobs, owner, observers)
        app.state.worker = worker = Worker(
            runner, claim_jobs=settings.run_worker, ingestor=ingestor, chores=chores
        )
        worker.start()
        ops.start(engine, runner, worker, sandbox)
        log_routes(settings, client)
        log.info("assistd %s ready (data dir %s)", __version__, settings.data_dir)
        try:
            yield
        finally:
            await worker.stop()
            if recorder is not None:
                await recorder.drain()
            ops.stop()
            if sandbox is not None:
                await asyncio.to_thread(sandbox.close)
            app.state.engine.dispose()

    # FastAPI's /docs and /redoc load their assets from a CDN: docs_ui serves bundled ones.
    app = FastAPI(
        title="assistd", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(V1Compat)  # inside RequestId: OpenAI-Beta: assistants=v1 requests
    app.add_middleware(BodyGuard, max_bytes=settings.max_json_bytes)  # size, then content
    ops.install(app)  # metrics and request spans, inside RequestId (they read its context)
    app.add_middleware(RequestId)
    openapi.install(app)
    url_policy.policy.allow_local = settings.allow_local_image_urls
    # Routes are tried in order, so the busiest (messages, runs) come first. runs must
    # precede threads: POST /v1/threads/runs must not match /v1/threads/{thread_id}.
    routers = (health, messages, runs, steps, threads, assistants, files, vector_stores)
    for module in (*routers, vector_store_files, models, operations, docs_ui, inspect, page):
        add_routes(app, module.router)
    return app


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """`app.include_router(router)`, minus a layer. In current FastAPI (0.165 here) an
    included router stays a nested router that every request walks twice (once to
    match, again to handle) through per-route context objects: 6-7% of the CPU of a
    short request (bench/api_crud.py). Our routers take no include-time options
    (prefix, dependencies, limits), so their routes, already complete, go on the app.
    What this gives up: `app.dependency_overrides` does not reach these routes (their
    provider is their router's); nothing here uses overrides."""
    app.router.routes.extend(router.routes)
