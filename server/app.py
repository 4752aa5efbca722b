"""Application factory: wires settings, database, storage, error handling and routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI

from sandbox.sessions import SandboxManager
from server import __version__, slow_work
from server.api_keys import KeyCache
from server.config import Settings
from server.db import Database, make_engine, migrate
from server.errors import install_error_handlers
from server.middleware import RequestId
from server.routers import (
    assistants,
    files,
    health,
    messages,
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
from server.runs.worker import Worker, worker_name
from server.storage import BlobStore
from server.tools.ingestion import Ingestor
from server.tools.registry import server_tools
from server.tools.search_service import SearchService
from server.v1compat import V1Compat

log = logging.getLogger("assistd")


async def start_sandbox(settings: Settings) -> tuple[SandboxManager | None, str | None]:
    """The code-interpreter sandbox if Docker and the image are there; else why not.
    Said once at start-up; runs asking for code_interpreter then fail with the reason."""
    if not settings.sandbox_enabled:
        log.info("code_interpreter: off (ASSISTD_SANDBOX=off)")
        return None, "turned off (ASSISTD_SANDBOX=off)"
    manager = SandboxManager(settings.sandbox)
    usable, detail = await asyncio.to_thread(manager.status)
    if not usable:
        log.warning("code_interpreter: unavailable: %s", detail)
        return None, detail
    log.info("code_interpreter: ready (%s)", detail)
    manager.start()
    return manager, None


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()

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
        app.state.bus = bus = EventBus()
        sandbox, problem = await start_sandbox(settings)
        app.state.sandbox, app.state.sandbox_status = sandbox, problem or "ok"
        app.state.search = search = SearchService(settings)
        tools = server_tools(
            settings, sandbox=sandbox, sandbox_problem=problem, blobs=blobs, search=search
        )
        owner = worker_name()
        # Metrics, traces, usage and the inspector's model-call log observe runs here.
        app.state.observers = observers = Observers()
        models = ModelClient(settings)
        app.state.runner = runner = Runner(db, settings, bus, models, owner, tools, observers)
        # Without the worker loop this process still executes the runs it streams.
        ingestor = Ingestor(db, settings, search, blobs, owner)
        app.state.worker = worker = Worker(
            runner, claim_jobs=settings.run_worker, ingestor=ingestor
        )
        worker.start()
        log.info("assistd %s ready (data dir %s)", __version__, settings.data_dir)
        try:
            yield
        finally:
            await worker.stop()
            if sandbox is not None:
                await asyncio.to_thread(sandbox.close)
            app.state.engine.dispose()

    app = FastAPI(title="assistd", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(V1Compat)  # inside RequestId: OpenAI-Beta: assistants=v1 requests
    app.add_middleware(RequestId)
    # Routes are tried in order, so the busiest (messages, runs) come first. runs must
    # precede threads: POST /v1/threads/runs must not match /v1/threads/{thread_id}.
    routers = (health, messages, runs, steps, threads, assistants, files, vector_stores)
    for module in (*routers, vector_store_files):
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
