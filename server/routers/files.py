"""/v1/files: multipart upload, metadata, content download, delete."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

from server.crud import files as crud
from server.crud import vector_stores
from server.crud.pagination import paginate
from server.deps import DB, FileListing, Project, Search, WorkerDep
from server.errors import APIError, bad_request
from server.ids import now
from server.json_safety import repair_text, text_problem
from server.models import StoredFile
from server.protocol.common import Deleted, ListPage
from server.protocol.files import UPLOAD_PURPOSES, FileObject
from server.routers.json_route import JSONRoute
from server.slow_work import run_slow
from server.storage import BlobStore, TooLarge

router = APIRouter(prefix="/v1/files", tags=["files"], route_class=JSONRoute)

MIN_EXPIRY, MAX_EXPIRY = 3600, 2_592_000


def _too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"File is too large: the limit is {limit} bytes (ASSISTD_MAX_FILE_BYTES).",
        param="file",
        code="file_too_large",
    )


def _limited_receive(receive: Receive, max_body: int) -> Receive:
    """Count body bytes as they arrive, so an upload without Content-Length is refused
    before it is spooled to disk in full."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_body:
                raise TooLarge
        return message

    return wrapped


def _expires_fields(form: Any) -> tuple[Any, Any] | None:
    """(anchor, seconds) from the form, or None when it sets no expiry. The SDK sends
    `expires_after[anchor]` and `expires_after[seconds]`; an `expires_after` part holding
    a JSON object is read the same way. Anything else about expiry is refused, never
    ignored: a client that asked for an expiry must get it or an error."""
    keys = [k for k in form if k == "expires_after" or k.startswith("expires_after[")]
    if not keys:
        return None
    known = {"expires_after[anchor]", "expires_after[seconds]"}
    if "expires_after" in keys:
        if len(keys) > 1:
            raise bad_request(
                "Send expires_after either as one JSON part or as expires_after[anchor] and "
                "expires_after[seconds], not both.",
                "expires_after",
            )
        raw = form.get("expires_after")
        try:
            value = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            value = None
        if not isinstance(value, dict) or set(value) - {"anchor", "seconds"}:
            raise bad_request(
                "expires_after must be an object with `anchor` and `seconds`.", "expires_after"
            )
        return value.get("anchor"), value.get("seconds")
    unknown = sorted(set(keys) - known)
    if unknown:
        name = unknown[0].removeprefix("expires_after[").rstrip("]")
        raise bad_request(
            f"Unknown parameter: 'expires_after.{name}'.",
            f"expires_after.{name}",
            "unknown_parameter",
        )
    return form.get("expires_after[anchor]"), form.get("expires_after[seconds]")


def _expires_at(form: Any, created: int) -> int | None:
    fields = _expires_fields(form)
    if fields is None:
        return None
    anchor, seconds = fields
    if anchor != "created_at":
        raise bad_request("expires_after.anchor must be 'created_at'.", "expires_after.anchor")
    if isinstance(seconds, bool) or not isinstance(seconds, int | str):
        seconds = None
    try:
        value = int(str(seconds), 10)
    except ValueError:
        raise bad_request(
            "expires_after.seconds must be an integer.", "expires_after.seconds"
        ) from None
    if not MIN_EXPIRY <= value <= MAX_EXPIRY:
        raise bad_request(
            f"expires_after.seconds must be between {MIN_EXPIRY} and {MAX_EXPIRY}.",
            "expires_after.seconds",
        )
    return created + value


def _check_text(form: Any, filename: str | None) -> None:
    """Form fields and the file name are stored or echoed: no unpaired surrogates (the
    multipart parser reads undecodable bytes as Latin-1, so none should get here) and
    no NUL, which PostgreSQL cannot store."""
    for key, value in [*form.multi_items(), ("file", filename)]:
        texts = [key, value] if isinstance(value, str) else [key]
        problem = next((p for p in map(text_problem, texts) if p), None)
        if problem:
            param = repair_text(key).replace("\x00", "")
            raise bad_request(
                f"Invalid value for '{param}': the text contains {problem}.",
                param,
                "invalid_value",
            )


# The multipart body, which the route reads itself (so it can cap it), for /openapi.json.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "dependentRequired": {
                        "expires_after[anchor]": ["expires_after[seconds]"],
                        "expires_after[seconds]": ["expires_after[anchor]"],
                    },
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)},
                        "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
                        "expires_after[seconds]": {
                            "type": "integer",
                            "minimum": MIN_EXPIRY,
                            "maximum": MAX_EXPIRY,
                        },
                    },
                }
            }
        },
    }
}


@router.post("", openapi_extra=UPLOAD_BODY)
async def upload_file(request: Request, project: Project, db: DB) -> FileObject:
    settings = request.app.state.settings
    limit = settings.max_file_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise _too_large(limit)  # refuse before reading a byte of the body
    limited = Request(request.scope, _limited_receive(request.receive, limit + 64 * 1024))
    try:
        form = await limited.form(max_files=1, max_fields=16)
    except TooLarge:
        raise _too_large(limit) from None
    except Exception as exc:  # malformed multipart
        raise bad_request(f"Could not parse the multipart body: {exc}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise bad_request(
            "Missing required parameter: 'file'.", "file", "missing_required_parameter"
        )
    _check_text(form, upload.filename)
    purpose = form.get("purpose")
    if not isinstance(purpose, str) or not purpose:
        raise bad_request(
            "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter"
        )
    if purpose not in UPLOAD_PURPOSES:
        raise bad_request(
            f"Invalid value for 'purpose': '{purpose}'. "
            f"Expected one of {', '.join(UPLOAD_PURPOSES)}.",
            "purpose",
            "invalid_value",
        )
    created_at = now()  # one clock reading, so expires_at is exactly created_at + seconds
    expires_at = _expires_at(form, created_at)
    store: BlobStore = request.app.state.blobs
    try:
        sha, size = await run_slow(request, store.put, upload.file, limit)
    except TooLarge:
        raise _too_large(limit) from None
    finally:
        await upload.close()
    filename = (upload.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    row = await run_in_threadpool(
        crud.create,
        db,
        project,
        filename=filename,
        size=size,
        purpose=purpose,
        sha256=sha,
        created_at=created_at,
        expires_at=expires_at,
    )
    return crud.to_api(row)


@router.get("")
def list_files(
    project: Project, db: DB, page: FileListing, purpose: str | None = None
) -> ListPage[FileObject]:
    where = {"project": project}
    if purpose is not None:
        where["purpose"] = purpose
    return paginate(db, StoredFile, where, page, crud.to_api)


@router.get("/{file_id}")
def get_file(file_id: str, project: Project, db: DB) -> FileObject:
    return crud.to_api(crud.get(db, project, file_id))


@router.get("/{file_id}/content")
def download_file(file_id: str, request: Request, project: Project, db: DB) -> FileResponse:
    row = crud.get(db, project, file_id)
    path = request.app.state.blobs.path(row.sha256)
    return FileResponse(path, media_type="application/octet-stream", filename=row.filename)


@router.delete("/{file_id}")
def delete_file(
    file_id: str, request: Request, project: Project, db: DB, search: Search, worker: WorkerDep
) -> Deleted:
    row = crud.get(db, project, file_id)
    # The file leaves every vector store (rows first, so no search sees it, then chunks).
    stores = vector_stores.detach_everywhere(db, project, file_id)
    if stores:
        worker.wake()  # its ingestions in flight stop at once
    for store_id in stores:
        search.remove_file(store_id, file_id)
    if crud.delete(db, row):
        request.app.state.blobs.remove(row.sha256)
    return Deleted(id=file_id, object="file")
