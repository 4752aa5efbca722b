"""Request-scoped dependencies: the caller's project and a database session.

Both are `async def` on purpose: FastAPI runs sync dependencies in its thread pool, one
hop each, and neither does blocking I/O (the session connects lazily inside the route).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from sqlmodel import Session

from server.api_keys import KeyCache
from server.config import DEFAULT_PROJECT
from server.errors import APIError


async def current_project(request: Request) -> str:
    """The caller's project. Keys come from ASSISTD_API_KEYS and from the database
    (`assistd keys create`); while neither holds any, every caller is in the default
    project. Lookups are cached for a few seconds (server/api_keys.py)."""
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
    """One cache per app, made on first use (no await in between, so never twice)."""
    state = request.app.state
    cache: KeyCache | None = getattr(state, "key_cache", None)
    if cache is None:
        cache = state.key_cache = KeyCache(state.engine, state.settings.api_keys)
    return cache


async def db_session(request: Request) -> AsyncIterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


Project = Annotated[str, Depends(current_project)]
DB = Annotated[Session, Depends(db_session)]


class ListParams:
    """limit / order / after / before, shared by every list endpoint."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> None:
        self.limit = limit
        self.order = order
        self.after = after
        self.before = before


Listing = Annotated[ListParams, Depends()]


class FileListParams(ListParams):
    """/files pages are larger: limit 1-10,000, default 10,000, as in the spec."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> None:
        super().__init__(limit=limit, order=order, after=after, before=None)


FileListing = Annotated[FileListParams, Depends()]
