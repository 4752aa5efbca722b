"""The server's own `/openapi.json`, made to say what the server does.

FastAPI's generated document declares a 422 `HTTPValidationError` on every operation;
this server answers 400, 401, 404, 413 and 503 (admin endpoints: 403 when off) in OpenAI's
error envelope instead (server/errors.py), streams runs as `text/event-stream` when
asked, downloads files as `application/octet-stream`, and reads an empty body as `{}`.
The document is rewritten once, on first request, to match; tests/test_schemathesis.py
holds the server to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_RESPONSE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_ERRORS = {
    "400": "Invalid request: the message and `param` say what and where.",
    "401": "Missing or unknown API key.",
    "403": "Admin endpoints are off (no ASSISTD_ADMIN_KEY is configured).",
    "404": "No such object in this project, or no such URL.",
    "413": "The request body is larger than the server's limit.",
    "503": "The database could not be reached; retry.",
}
# Operations that stream server-sent events when the body says `"stream": true`.
STREAMING = {
    ("post", "/v1/threads/runs"),
    ("post", "/v1/threads/{thread_id}/runs"),
    ("post", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"),
}
# One event of such a stream (OpenAPI 3.1 has a sequential media type's schema describe
# each item): `event: thread.run.created` / `data: {...the run...}`, ..., `event: done`
# / `data: [DONE]`.
SSE_EVENT = {
    "type": "object",
    "description": "A server-sent event, when the body sets `stream`.",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "description": "thread.run.created, ..., done"},
        "data": {"type": "string", "description": "The event's object as JSON; [DONE]."},
    },
}
DOWNLOADS = {("get", "/v1/files/{file_id}/content")}
# What each create returns an id for, so a fuzzer (and a reader) can follow it: (method,
# path) -> [(the path the new object lives under, its parameter, where its id is)].
CREATES: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    ("post", "/v1/assistants"): [("/v1/assistants", "assistant_id", "id")],
    ("post", "/v1/threads"): [("/v1/threads", "thread_id", "id")],
    ("post", "/v1/threads/runs"): [
        ("/v1/threads", "thread_id", "thread_id"),
        ("/v1/threads/{thread_id}/runs", "run_id", "id"),
    ],
    ("post", "/v1/threads/{thread_id}/messages"): [
        ("/v1/threads/{thread_id}/messages", "message_id", "id")
    ],
    ("post", "/v1/threads/{thread_id}/runs"): [("/v1/threads/{thread_id}/runs", "run_id", "id")],
    ("post", "/v1/files"): [("/v1/files", "file_id", "id")],
    ("post", "/v1/vector_stores"): [("/v1/vector_stores", "vector_store_id", "id")],
    ("post", "/v1/vector_stores/{vector_store_id}/files"): [
        ("/v1/vector_stores/{vector_store_id}/files", "file_id", "id")
    ],
    ("post", "/v1/vector_stores/{vector_store_id}/file_batches"): [
        ("/v1/vector_stores/{vector_store_id}/file_batches", "batch_id", "id")
    ],
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _required_fields(schema: dict[str, Any], ref_or_schema: dict[str, Any]) -> list[str]:
    ref = ref_or_schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        ref_or_schema = schema["components"]["schemas"].get(ref.rsplit("/", 1)[1], {})
    return list(ref_or_schema.get("required", []))


def rewrite(schema: dict[str, Any]) -> dict[str, Any]:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorResponse"] = ERROR_RESPONSE
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            if path.startswith("/admin/"):
                for code in ("400", "401", "403"):
                    responses.setdefault(code, _error(_ERRORS[code]))
                continue
            if not path.startswith("/v1/"):
                continue
            codes = ["400", "401", "404", "503"]
            body = op.get("requestBody")
            if body is not None:
                codes.append("413")
                json_body = body.get("content", {}).get("application/json")
                if json_body and not _required_fields(schema, json_body.get("schema", {})):
                    body["required"] = False  # an empty body reads as {}
            for code in codes:
                responses.setdefault(code, _error(_ERRORS[code]))
            ok = responses.get("200", {})
            if (method, path) in STREAMING:
                ok.setdefault("content", {})["text/event-stream"] = {"schema": SSE_EVENT}
            if (method, path) in DOWNLOADS:
                ok["content"] = {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }
    _add_links(schema)
    ready = schema.get("paths", {}).get("/ready", {}).get("get")
    if ready is not None:
        ready["responses"]["503"] = {"description": "Not ready (database or migrations)."}
    return schema


def _add_links(schema: dict[str, Any]) -> None:
    """OpenAPI links from each create to the operations on what it made: a new id goes
    to the target's parameter of that name, and the target's other path parameters come
    from the create's own path."""
    paths: dict[str, Any] = schema.get("paths", {})
    for (method, path), made in CREATES.items():
        ok = paths.get(path, {}).get(method, {}).get("responses", {}).get("200")
        if ok is None:
            continue
        sources = {
            part[1:-1]: f"$request.path.{part[1:-1]}"
            for part in path.split("/")
            if part.startswith("{")
        }
        sources.update({param: f"$response.body#/{field}" for _, param, field in made})
        links = ok.setdefault("links", {})
        prefixes = [f"{base}/{{{param}}}" for base, param, _ in made]
        for target, item in paths.items():
            if not any(target == p or target.startswith(p + "/") for p in prefixes):
                continue
            names = [part[1:-1] for part in target.split("/") if part.startswith("{")]
            if not all(name in sources for name in names):
                continue
            for op in item.values():
                links[op["operationId"]] = {
                    "operationId": op["operationId"],
                    "parameters": {name: sources[name] for name in names},
                }


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewrite(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
