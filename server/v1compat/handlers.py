"""The v1 requests that need more than a body rewrite: the v1-only file endpoints, and
assistant updates and deletes, which keep the assistant's implicit vector store in step
with its v1 `file_ids`.

An assistant's v1 file list is stored as its `tool_resources.code_interpreter.file_ids`;
with `retrieval` on, the same files sit in a vector store this layer made and marked
(`shapes.IMPLICIT_STORE_KEY`). Everything goes through the v2 API (`inner.Inner`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError

from server.errors import APIError, bad_request, validation_error
from server.protocol.common import Request
from server.v1compat.inner import Inner, Reply
from server.v1compat.shapes import (
    JSON,
    assistant_file_ids,
    assistant_resources,
    has_file_search,
    is_implicit_store,
    message_file_ids,
    tools_to_v2,
)

MAX_ASSISTANT_FILES = 20  # v1's limit, and v2's for code_interpreter files

Handler = Callable[[Inner, dict[str, str], dict[str, str], bytes], Awaitable[Reply]]


class Failed(Exception):
    """A v2 call that did not succeed: its answer becomes the v1 request's answer."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class AssistantFileCreate(Request):
    file_id: str = Field(min_length=1)


_OBJECT = TypeAdapter(dict[str, Any])


def _invalid(exc: ValidationError) -> APIError:
    """The same 400 the v2 routes give for a bad body."""
    errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
    return validation_error(RequestValidationError(errors))


def parse_object(body: bytes) -> JSON:
    try:
        return _OBJECT.validate_json(body or b"{}")
    except ValidationError as exc:
        raise _invalid(exc) from None


async def get_ok(inner: Inner, path: str, query: dict[str, Any] | None = None) -> Any:
    reply = await inner.call("GET", path, query=query)
    if not reply.ok:
        raise Failed(reply)
    return reply.body


async def call_ok(inner: Inner, method: str, path: str, body: Any = None) -> Any:
    reply = await inner.call(method, path, body)
    if not reply.ok:
        raise Failed(reply)
    return reply.body


# --- paging a list held in memory -----------------------------------------------------


def page_ids(ids: list[str], query: dict[str, str]) -> tuple[list[str], bool]:
    """One page of `ids` (oldest first) by the v2 list parameters, with their errors."""
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise bad_request(
            "Invalid value for 'limit': must be an integer from 1 to 100.", param="limit"
        )
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("Invalid value for 'order': must be 'asc' or 'desc'.", param="order")
    ordered = ids if order == "asc" else ids[::-1]
    for param in ("after", "before"):
        cursor = query.get(param)
        if cursor is None:
            continue
        if cursor not in ordered:
            raise bad_request(f"Invalid '{param}': no object found with id '{cursor}'.", param)
        at = ordered.index(cursor)
        ordered = ordered[at + 1 :] if param == "after" else ordered[:at]
    if "before" in query and "after" not in query:
        return ordered[-limit:], len(ordered) > limit
    return ordered[:limit], len(ordered) > limit


def list_page(data: list[JSON], has_more: bool) -> JSON:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


# --- assistants and their implicit store ----------------------------------------------


async def implicit_store_id(inner: Inner, assistant: JSON) -> str | None:
    search = (assistant.get("tool_resources") or {}).get("file_search") or {}
    ids = search.get("vector_store_ids") or []
    if not ids:
        return None
    reply = await inner.call("GET", f"/v1/vector_stores/{ids[0]}")
    return ids[0] if reply.ok and is_implicit_store(reply.body) else None


async def sync_store(inner: Inner, store_id: str, file_ids: list[str]) -> None:
    """Attach and detach so the store holds exactly `file_ids`."""
    held: list[str] = []
    query: dict[str, Any] = {"limit": 100}
    while True:
        page = await get_ok(inner, f"/v1/vector_stores/{store_id}/files", query)
        held += [f["id"] for f in page["data"]]
        if not page["has_more"]:
            break
        query["after"] = page["last_id"]
    for file_id in file_ids:
        if file_id not in held:
            await call_ok(
                inner, "POST", f"/v1/vector_stores/{store_id}/files", {"file_id": file_id}
            )
    for file_id in held:
        if file_id not in file_ids:
            await call_ok(inner, "DELETE", f"/v1/vector_stores/{store_id}/files/{file_id}")


async def set_assistant_files(inner: Inner, assistant: JSON, file_ids: Any, changes: JSON) -> Reply:
    """Update the assistant with `changes` (v2 fields) and `file_ids` as its v1 files.

    With retrieval on, the implicit store is synced after the update succeeded (so a
    rejected update changes nothing), or made by the update itself when there is none;
    a store a v2 client attached is then replaced, as an assistant has one store."""
    tools = changes.get("tools", assistant.get("tools"))
    resources = dict(assistant.get("tool_resources") or {})
    store_id = await implicit_store_id(inner, assistant)
    retrieval = has_file_search(tools)
    if retrieval and store_id:
        resources["file_search"] = {"vector_store_ids": [store_id]}
    elif retrieval and file_ids:
        resources["file_search"] = assistant_resources(file_ids, tools)["file_search"]
    resources["code_interpreter"] = {"file_ids": file_ids}
    path = f"/v1/assistants/{assistant['id']}"
    reply = await inner.call("POST", path, {**changes, "tool_resources": resources})
    if reply.ok and retrieval and store_id:
        await sync_store(inner, store_id, file_ids)
    return reply


async def update_assistant(
    inner: Inner, ids: dict[str, str], _: dict[str, str], body: bytes
) -> Reply:
    data = parse_object(body)
    path = f"/v1/assistants/{ids['assistant_id']}"
    changes = {k: v for k, v in data.items() if k != "file_ids"}
    if "tools" in changes:
        changes["tools"] = tools_to_v2(changes["tools"])
    if "file_ids" not in data and "tools" not in data:
        return await inner.call("POST", path, changes)
    assistant = await get_ok(inner, path)
    file_ids = data["file_ids"] if "file_ids" in data else assistant_file_ids(assistant)
    return await set_assistant_files(inner, assistant, file_ids, changes)


async def delete_assistant(
    inner: Inner, ids: dict[str, str], _: dict[str, str], __: bytes
) -> Reply:
    """Deleting the assistant deletes its implicit store too, as v1 deleted its files'
    index with it."""
    path = f"/v1/assistants/{ids['assistant_id']}"
    store_id = await implicit_store_id(inner, await get_ok(inner, path))
    reply = await inner.call("DELETE", path)
    if reply.ok and store_id:
        await inner.call("DELETE", f"/v1/vector_stores/{store_id}")
    return reply


# --- /assistants/{assistant_id}/files --------------------------------------------------


async def assistant_file(inner: Inner, assistant: JSON, file_id: str) -> JSON:
    """`created_at` is the file's own: when a file was attached is not recorded."""
    reply = await inner.call("GET", f"/v1/files/{file_id}")
    created_at = reply.body["created_at"] if reply.ok else assistant["created_at"]
    return {
        "id": file_id,
        "object": "assistant.file",
        "created_at": created_at,
        "assistant_id": assistant["id"],
    }


def assistant_file_not_found(file_id: str) -> APIError:
    return APIError(404, f"No assistant file found with id '{file_id}'.")


async def create_assistant_file(
    inner: Inner, ids: dict[str, str], _: dict[str, str], body: bytes
) -> Reply:
    try:
        file_id = AssistantFileCreate.model_validate_json(body or b"{}").file_id
    except ValidationError as exc:
        raise _invalid(exc) from None
    assistant = await get_ok(inner, f"/v1/assistants/{ids['assistant_id']}")
    current = assistant_file_ids(assistant)
    if file_id not in current:
        if len(current) >= MAX_ASSISTANT_FILES:
            raise bad_request(
                f"An assistant can have at most {MAX_ASSISTANT_FILES} files.", param="file_id"
            )
        if not (await inner.call("GET", f"/v1/files/{file_id}")).ok:
            raise bad_request(f"No file found with id '{file_id}'.", param="file_id")
        reply = await set_assistant_files(inner, assistant, [*current, file_id], {})
        if not reply.ok:
            return reply
    return Reply(200, await assistant_file(inner, assistant, file_id))


async def list_assistant_files(
    inner: Inner, ids: dict[str, str], query: dict[str, str], _: bytes
) -> Reply:
    assistant = await get_ok(inner, f"/v1/assistants/{ids['assistant_id']}")
    page, has_more = page_ids(assistant_file_ids(assistant), query)
    data = [await assistant_file(inner, assistant, file_id) for file_id in page]
    return Reply(200, list_page(data, has_more))


async def get_assistant_file(
    inner: Inner, ids: dict[str, str], _: dict[str, str], __: bytes
) -> Reply:
    assistant = await get_ok(inner, f"/v1/assistants/{ids['assistant_id']}")
    if ids["file_id"] not in assistant_file_ids(assistant):
        raise assistant_file_not_found(ids["file_id"])
    return Reply(200, await assistant_file(inner, assistant, ids["file_id"]))


async def delete_assistant_file(
    inner: Inner, ids: dict[str, str], _: dict[str, str], __: bytes
) -> Reply:
    assistant = await get_ok(inner, f"/v1/assistants/{ids['assistant_id']}")
    file_id = ids["file_id"]
    current = assistant_file_ids(assistant)
    if file_id not in current:
        raise assistant_file_not_found(file_id)
    remaining = [f for f in current if f != file_id]
    reply = await set_assistant_files(inner, assistant, remaining, {})
    if not reply.ok:
        return reply
    return Reply(200, {"id": file_id, "object": "assistant.file.deleted", "deleted": True})


# --- /threads/{thread_id}/messages/{message_id}/files ---------------------------------


def message_file(message: JSON, file_id: str) -> JSON:
    """A message's files are attached when it is created, so they share its created_at."""
    return {
        "id": file_id,
        "object": "thread.message.file",
        "created_at": message["created_at"],
        "message_id": message["id"],
    }


async def get_message(inner: Inner, ids: dict[str, str]) -> JSON:
    path = f"/v1/threads/{ids['thread_id']}/messages/{ids['message_id']}"
    message: JSON = await get_ok(inner, path)
    return message


async def list_message_files(
    inner: Inner, ids: dict[str, str], query: dict[str, str], _: bytes
) -> Reply:
    message = await get_message(inner, ids)
    page, has_more = page_ids(message_file_ids(message), query)
    return Reply(200, list_page([message_file(message, f) for f in page], has_more))


async def get_message_file(
    inner: Inner, ids: dict[str, str], _: dict[str, str], __: bytes
) -> Reply:
    message = await get_message(inner, ids)
    if ids["file_id"] not in message_file_ids(message):
        raise APIError(404, f"No message file found with id '{ids['file_id']}'.")
    return Reply(200, message_file(message, ids["file_id"]))
