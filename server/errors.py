"""OpenAI's error envelope, and the handlers that make every failure use it.

The SDK maps status codes to exception classes (400 BadRequestError, 401
AuthenticationError, 404 NotFoundError, ...) and retries 409/429/5xx on its own, so
the status code is part of the contract: a conflict the client cannot fix by retrying
is a 400, never a 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


class APIError(Exception):
    """An error the client sees as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def not_found(kind: str, object_id: str) -> APIError:
    """Phrased like the hosted API; also what another project's ids answer."""
    return APIError(404, f"No {kind} found with id '{object_id}'.")


def error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


# Values of the `type` discriminators in server/protocol: pydantic puts the chosen union
# branch's tag into an error's location, right before the field of the same name.
_UNION_TAGS = {
    "code_interpreter",
    "file_search",
    "function",
    "text",
    "image_file",
    "image_url",
    "json_object",
    "json_schema",
}
_TYPE_NAMES = {"str", "int", "float", "bool", "dict", "list", "none"}


def _param_from_loc(loc: tuple[Any, ...]) -> str | None:
    """('body', 'messages', 0, 'content') -> 'messages[0].content'; union branch names
    (`str`, `literal['auto']`, a tag before its same-named field) mean nothing to a client."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "form"):
        parts = parts[1:]
    out = ""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = str(part)
        nxt = parts[i + 1] if i + 1 < len(parts) else None
        if not name.isidentifier() or name in _TYPE_NAMES:
            continue
        if name in _UNION_TAGS and nxt == name:
            continue
        out += f".{name}" if out else name
    return out or None


_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")


def _param_of(error: dict[str, Any]) -> str | None:
    """The error's param; a discriminated union's bad or missing tag names the tag field
    (`tools[0].type`), as the hosted API did."""
    param = _param_from_loc(tuple(error.get("loc", ())))
    if error.get("type") in _TAG_ERRORS:
        tag = str((error.get("ctx") or {}).get("discriminator", "type")).strip("'")
        param = f"{param}.{tag}" if param else tag
    return param


def _most_specific(errors: list[Any]) -> dict[str, Any]:
    """The error to report: the first field's, and of its errors the deepest, then the
    one from the union branch the value's type matched. A union reports one error per
    branch; for `response_format: {"type": "json_schema", "json_schema": {"name": ""}}`
    the first says "Input should be 'auto'", the deepest names
    `response_format.json_schema.name`."""
    if not errors:
        return {}
    first = errors[0]
    field = tuple(first.get("loc", ()))[:2]
    same: list[dict[str, Any]] = [e for e in errors if tuple(e.get("loc", ()))[:2] == field]
    best = max(same, key=lambda e: (len(_param_of(e) or ""), not _other_branch(e)))
    return dict(best)


def _other_branch(error: dict[str, Any]) -> bool:
    """An error that only says the value is not of one union branch's type (a list sent
    where `str | list[str]` is accepted): another branch's error says more."""
    kind = str(error.get("type", ""))
    return kind.endswith("_type") or kind in ("literal_error", "is_instance_of")


def validation_error(exc: RequestValidationError) -> APIError:
    first = _most_specific(list(exc.errors()))
    kind = first.get("type")
    if kind == "json_invalid":
        return bad_request(
            "We could not parse the JSON body of your request. The body must be valid JSON.",
        )
    param = _param_of(first)
    msg = str(first.get("msg", "Invalid request."))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    ctx = first.get("ctx") or {}
    if kind == "union_tag_invalid":
        message = (
            f"Invalid value for '{param}': {ctx.get('tag')!r}. "
            f"Supported values are: {ctx.get('expected_tags')}."
        )
        return bad_request(message, param=param, code="invalid_value")
    if kind in ("missing", "union_tag_not_found"):
        if param is None:  # no body at all (body_guard reads an empty one as {})
            return bad_request("The request body must be a JSON object.", code="invalid_value")
        message = f"Missing required parameter: '{param}'."
        return bad_request(message, param=param, code="missing_required_parameter")
    if kind == "string_too_long" and param:  # the hosted API's wording and code
        got = len(first.get("input") or "")
        message = (
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{ctx.get('max_length')}, but got a string with length {got} instead."
        )
        return bad_request(message, param=param, code="string_above_max_length")
    if kind == "too_long" and param:
        message = (
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} "
            "instead."
        )
        return bad_request(message, param=param, code="array_above_max_length")
    message = f"Invalid value for '{param}': {msg}" if param else msg
    return bad_request(message, param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers: dict[str, str] = {}
        if exc.status_code == 404:
            message = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed for {request.url.path}"
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        else:
            message = str(exc.detail)
        response = error_response(APIError(exc.status_code, message))
        response.headers.update(headers)
        return response


def allowed_methods(app: FastAPI, scope: Any) -> list[str]:
    """The methods the API offers at this path. Starlette's own Allow header names only
    the first route that matched. Of the routes whose template matches, the most literal
    ones are the resource (`/v1/threads/runs` is POST only, although
    `/v1/threads/{thread_id}` would also match it)."""
    best, methods = -1, set[str]()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        path = getattr(route, "path", None)
        if match == Match.NONE or path is None:
            continue
        literal = sum(1 for part in path.split("/") if part and not part.startswith("{"))
        if literal > best:
            best, methods = literal, set()
        if literal == best:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)
