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


def validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return bad_request(
            "We could not parse the JSON body of your request. The body must be valid JSON.",
        )
    param = _param_from_loc(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "Invalid request."))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'."
        return bad_request(message, param=param, code="missing_required_parameter")
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
        if exc.status_code == 404:
            message = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed for {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(APIError(exc.status_code, message))
