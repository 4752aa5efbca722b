"""Check our HTTP JSON responses against the official OpenAI OpenAPI 3.1 subset.

Why: the openai SDK parses leniently (missing or mistyped fields rarely raise), so drift from the
real API's wire shapes would go unnoticed; this checks every JSON body a test client sees.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "data" / "openai-assistants-openapi.yaml"
_SPEC_URI = "urn:openai-assistants-openapi"
_ERROR_POINTER = "/components/schemas/ErrorResponse"
_NULLABLE_MARK = {"nullable": True}


def _honour_nullable(node: Any) -> Any:
    """Turn OpenAPI 3.0 `nullable: true` leftovers into 3.1 null branches.

    Why: the 3.1 spec still uses `nullable` on RunObject (started_at, required_action, ...);
    JSON Schema 2020-12 ignores it, so every real queued run would otherwise fail.
    """
    if isinstance(node, list):
        return [_honour_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    nullable = node.get("nullable") is True
    all_of = node.get("allOf")
    if isinstance(all_of, list) and _NULLABLE_MARK in all_of:  # allOf: [$ref, {nullable: true}]
        nullable = True
        node = {**node, "allOf": [s for s in all_of if s != _NULLABLE_MARK]}
    out = {k: _honour_nullable(v) for k, v in node.items() if not (nullable and k == "nullable")}
    return {"anyOf": [out, {"type": "null"}]} if nullable else out


def _allow_null_list_cursors(spec: dict[str, Any]) -> None:
    """Let List*Response first_id/last_id be null: the real API sends null for an empty page."""
    for name, schema in spec["components"]["schemas"].items():
        if name.startswith("List") and name.endswith("Response"):
            for key in ("first_id", "last_id"):
                prop = schema.get("properties", {}).get(key)
                if prop is not None and prop.get("type") == "string":
                    prop["type"] = ["string", "null"]


@cache
def load_spec() -> dict[str, Any]:
    """Load (once) the spec, with the two documented fixes above applied."""
    with SPEC_PATH.open(encoding="utf-8") as fh:
        spec: dict[str, Any] = _honour_nullable(yaml.safe_load(fh))
    _allow_null_list_cursors(spec)
    return spec


@cache
def _registry() -> Registry:
    """Whole spec as one resource, so `#/components/...` refs resolve against the document."""
    resource = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(_SPEC_URI, resource)


@cache
def _validator(pointer: str) -> Draft202012Validator:
    """Validator for the schema at a JSON pointer into the spec (unknown formats are ignored)."""
    ref = f"{_SPEC_URI}#{quote(pointer, safe='/~')}"
    return Draft202012Validator({"$ref": ref}, registry=_registry())


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _get(spec: dict[str, Any], pointer: str) -> Any:
    node: Any = spec
    for token in pointer.lstrip("/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def match_path(method: str, url_path: str) -> str | None:
    """Spec path template for a request, preferring literal segments (`/threads/runs`)."""
    if url_path == "/v1" or url_path.startswith("/v1/"):
        url_path = url_path[3:]
    segments = url_path.strip("/").split("/")
    candidates = []
    for template, item in load_spec()["paths"].items():
        parts = template.strip("/").split("/")
        if method.lower() not in item or len(parts) != len(segments):
            continue
        if all(p == s or (p.startswith("{") and s) for p, s in zip(parts, segments, strict=True)):
            candidates.append((tuple(p.startswith("{") for p in parts), template))
    return min(candidates)[1] if candidates else None


def _schema_pointer(method: str, template: str, status: int) -> str | None:
    """JSON pointer of the application/json schema for this response, or None to skip it."""
    spec = load_spec()
    responses_ptr = f"/paths/{_escape(template)}/{method.lower()}/responses"
    responses = _get(spec, responses_ptr)
    key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None)
    if key is None:
        if status >= 400:
            return _ERROR_POINTER
        raise AssertionError(f"{method} {template}: status {status} is not documented in the spec")
    pointer = f"{responses_ptr}/{key}"
    response = responses[key]
    while "$ref" in response:  # response objects may point at components/responses
        pointer = response["$ref"].removeprefix("#")
        response = _get(spec, pointer)
    media = response.get("content", {}).get("application/json")
    if not media or "schema" not in media or media["schema"] == {"type": "string"}:
        return None  # no body, or a raw download that the spec merely labels as JSON
    return f"{pointer}/content/application~1json/schema"


def validate_response(method: str, url_path: str, status: int, body: object) -> None:
    """Raise AssertionError if `body` does not match the spec; unknown paths are ignored."""
    template = match_path(method, url_path)
    if template is None:
        return
    pointer = _schema_pointer(method, template, status)
    if pointer is None:
        return
    error = best_match(_validator(pointer).iter_errors(body))
    if error is not None:
        message = error.message if len(error.message) <= 500 else error.message[:500] + "..."
        schema_path = "/".join(str(p) for p in error.absolute_schema_path)
        raise AssertionError(
            f"{method} {url_path} -> {status} violates {template} ({pointer}): "
            f"at {error.json_path}: {message} [schema path: {schema_path}]"
        )


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def contract_hook(response: httpx.Response) -> None:
    """httpx response event hook: validate JSON bodies; SSE and other bodies are left unread.

    Why read(): hooks run before the body is loaded; read() buffers it, so the SDK reads it again.
    """
    if not _is_json(response.headers.get("content-type", "")):
        return
    response.read()
    if not response.content:
        return
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.request.url.path}: JSON content-type, bad body") from exc
    validate_response(
        response.request.method, response.request.url.path, response.status_code, body
    )
