"""Application factory: wires settings, database, storage, error handling and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from server import __version__
from server.config import Settings
from server.db import make_engine, migrate
from server.errors import install_error_handlers
from server.middleware import RequestId
from server.routers import assistants, files, health, messages, threads
from server.storage import BlobStore

log = logging.getLogger("assistd")


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if run_migrations:
            migrate(settings.database_url)
        app.state.engine = make_engine(settings.database_url)
        app.state.blobs = BlobStore(settings.files_dir)
        log.info("assistd %s ready (data dir %s)", __version__, settings.data_dir)
        try:
            yield
        finally:
            app.state.engine.dispose()

    app = FastAPI(title="assistd", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestId)
    for module in (health, assistants, threads, messages, files):
        app.include_router(module.router)
    return app
