"""Request-scoped dependencies: the caller's project and a database session.

Both are `async def` on purpose: FastAPI runs sync dependencies in its thread pool, one
hop each, and neither does blocking I/O (the session connects lazily inside the route).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from sqlmodel import Session

from server.config import DEFAULT_PROJECT
from server.errors import APIError


async def current_project(request: Request) -> str:
    keys = request.app.state.settings.api_keys
    if not keys:
        return DEFAULT_PROJECT
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise APIError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    project = keys.get(token)
    if project is None:
        shown = f"{token[:3]}...{token[-4:]}" if len(token) > 8 else "***"
        raise APIError(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")
    return project


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
