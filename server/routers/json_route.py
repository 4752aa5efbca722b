"""A route class that answers a sync endpoint's pydantic object as JSON in the endpoint's
own worker thread.

Why: for a sync endpoint FastAPI validates the returned object against the response
model a second time, in a second thread-pool hop, and only then serialises it. Our
endpoints build their answers from protocol models (server/protocol), already validated
when constructed, so that second pass re-checks known-good data. Serialising right away
halved the CPU of a 20-message list page (bench/api_crud.py). The return annotation still
declares the response model, so the OpenAPI schema is unchanged; anything that is not a
pydantic object (a Response, a file) goes through FastAPI as before.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response


class JSONRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not inspect.isgeneratorfunction(endpoint):
            endpoint = _serialise_in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _serialise_in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the signature (FastAPI reads parameters through __wrapped__)
    # and the return annotation (the response model of the OpenAPI schema).
    @functools.wraps(endpoint)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        if not isinstance(result, BaseModel):
            return result
        response = Response(
            result.__pydantic_serializer__.to_json(result, by_alias=True),
            media_type="application/json",
        )
        # Headers and status an endpoint set on its injected `response: Response`
        # (openai-poll-after-ms, say) are FastAPI's to copy only when it builds the reply.
        for value in kwargs.values():
            if isinstance(value, Response):
                if value.status_code:
                    response.status_code = value.status_code
                response.headers.raw.extend(value.headers.raw)
        return response

    return wrapper
