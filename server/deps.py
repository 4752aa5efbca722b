"""Request-scoped dependencies: the caller's project and a database session.

Both are `async def` on purpose: FastAPI runs sync dependencies in its thread pool, one
hop each, and neither does blocking I/O (the session connects lazily inside the route).

A database that cannot be reached (down, restarting, failing over) is a 503
`database_unavailable` in OpenAI's envelope, whether it fails during the key lookup or
inside the route: the SDK retries 503 on its own, and a 500 would read as our bug.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from retrieval.embedding import EmbeddingModels
from server.api_keys import KeyCache
from server.config import DEFAULT_PROJECT, Settings
from server.crud.pagination import ListParams
from server.errors import APIError
from server.runs.runner import Runner
from server.runs.worker import Worker
from server.tools.search_service import SearchService

log = logging.getLogger("assistd")

# Connection refused or lost, server shutting down, too many clients, a lock or
# serialization failure, or no pool connection in time: transient, worth a retry.
UNAVAILABLE = (OperationalError, PoolTimeout)


def database_unavailable(exc: Exception) -> APIError:
    log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
    return APIError(
        503,
        "The server could not reach its database. Please retry your request shortly.",
        type="server_error",
        code="database_unavailable",
    )


async def current_project(request: Request) -> str:
    """The caller's project. Keys come from ASSISTD_API_KEYS and from the database
    (`assistd keys create`); while neither holds any, every caller is in the default
    project. Lookups are cached for a few seconds (server/api_keys.py)."""
    try:
        return await _project(request)
    except UNAVAILABLE as exc:
        raise database_unavailable(exc) from exc


async def _project(request: Request) -> str:
    keys = _key_cache(request)
    if not await keys.auth_required():
        return DEFAULT_PROJECT
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise APIError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    project = await keys.project_for(token)
    if project is None:
        shown = f"{token[:3]}...{token[-4:]}" if len(token) > 8 else "***"
        raise APIError(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")
    return project


def _key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache  # one per app, built in its lifespan
    return cache


async def db_session(request: Request) -> AsyncIterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        try:
            yield session
        except UNAVAILABLE as exc:
            raise database_unavailable(exc) from exc


Project = Annotated[str, Depends(current_project)]
DB = Annotated[Session, Depends(db_session)]


# The process's services, built whole in the app's lifespan (server/app.py).
async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def run_runner(request: Request) -> Runner:
    runner: Runner = request.app.state.runner
    return runner


async def run_worker(request: Request) -> Worker:
    worker: Worker = request.app.state.worker
    return worker


async def search_service(request: Request) -> SearchService:
    search: SearchService = request.app.state.search
    return search


async def embedding_models(request: Request) -> EmbeddingModels:
    """The embedding models clients may name (and the default of new stores)."""
    search: SearchService = request.app.state.search
    return search.models


AppSettings = Annotated[Settings, Depends(app_settings)]
Search = Annotated[SearchService, Depends(search_service)]
Embeddings = Annotated[EmbeddingModels, Depends(embedding_models)]
RunnerDep = Annotated[Runner, Depends(run_runner)]
WorkerDep = Annotated[Worker, Depends(run_worker)]


# The query parameters are read by `async def` functions, not by the dataclass itself:
# FastAPI calls a sync dependency (a class is one) through its thread pool, a hop that
# cost a list request more than its SQL (bench/api_crud.py).
async def list_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    before: str | None = None,
) -> ListParams:
    return ListParams(limit, order, after, before)


async def file_list_params(
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> ListParams:
    """/files pages are larger: limit 1-10,000, default 10,000, as in the spec."""
    return ListParams(limit, order, after, None)


Listing = Annotated[ListParams, Depends(list_params)]
FileListing = Annotated[ListParams, Depends(file_list_params)]
