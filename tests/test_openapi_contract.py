"""Unit tests of the OpenAPI contract checker itself (no server needed)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.openapi_contract import contract_hook, match_path, validate_response


def assistant(**overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "asst_abc123",
        "object": "assistant",
        "created_at": 1_700_000_000,
        "name": "Math tutor",
        "description": None,
        "model": "gpt-4o",
        "instructions": "You are a tutor.",
        "tools": [{"type": "code_interpreter"}],
        "tool_resources": {"code_interpreter": {"file_ids": []}},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    obj.update(overrides)
    return obj


def thread() -> dict[str, Any]:
    return {
        "id": "thread_1",
        "object": "thread",
        "created_at": 1_700_000_000,
        "tool_resources": None,
        "metadata": {},
    }


def error(message: str = "No assistant found with id 'asst_x'.") -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_valid_assistant_passes() -> None:
    validate_response("POST", "/v1/assistants", 200, assistant())
    validate_response("GET", "/v1/assistants/asst_abc123", 200, assistant())


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({k: v for k, v in assistant().items() if k != "created_at"}, "'created_at' is a required"),
        (assistant(object="foo"), "$.object"),
        (assistant(tools=[{"type": "browser"}]), "$.tools[0]"),
    ],
)
def test_invalid_assistant_fails(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(AssertionError) as info:
        validate_response("GET", "/v1/assistants/asst_abc123", 200, body)
    assert needle in str(info.value)
    assert "/v1/assistants/asst_abc123 -> 200" in str(info.value)


def test_list_response() -> None:
    page = {
        "object": "list",
        "data": [assistant()],
        "first_id": "asst_abc123",
        "last_id": "asst_abc123",
        "has_more": False,
    }
    validate_response("GET", "/v1/assistants", 200, page)
    empty = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    validate_response("GET", "/v1/assistants", 200, empty)  # real API sends null cursors
    bad = {**page, "data": [assistant(created_at="yesterday")]}
    with pytest.raises(AssertionError, match=r"\$\.data\[0\]\.created_at"):
        validate_response("GET", "/v1/assistants", 200, bad)


def test_error_envelope() -> None:
    validate_response("GET", "/v1/assistants/asst_x", 404, error())
    validate_response("POST", "/v1/threads", 429, error("Slow down."))  # listed via $ref
    with pytest.raises(AssertionError, match="'error' is a required"):
        validate_response("GET", "/v1/assistants/asst_x", 404, {"detail": "Not Found"})
    with pytest.raises(AssertionError, match="'param' is a required"):
        bad = {"error": {"message": "nope", "type": "invalid_request_error", "code": None}}
        validate_response("GET", "/v1/assistants/asst_x", 404, bad)


def test_undocumented_success_status_fails() -> None:
    with pytest.raises(AssertionError, match="status 201 is not documented"):
        validate_response("POST", "/v1/assistants", 201, assistant())


def test_path_matching_prefers_literal_segments() -> None:
    assert match_path("POST", "/v1/threads/runs") == "/threads/runs"
    assert match_path("GET", "/v1/threads/thread_1") == "/threads/{thread_id}"
    assert match_path("GET", "/v1/threads/runs") == "/threads/{thread_id}"  # no GET /threads/runs
    validate_response("GET", "/v1/threads/thread_1", 200, thread())
    with pytest.raises(AssertionError, match="/threads/runs"):
        validate_response("POST", "/v1/threads/runs", 200, thread())  # expects a RunObject


def test_unknown_paths_are_ignored() -> None:
    validate_response("GET", "/health", 200, {"ok": True})
    validate_response("GET", "/v1/models", 200, {"anything": 1})
    validate_response("PUT", "/v1/assistants", 200, {"anything": 1})


def test_queued_run_with_nulls_passes() -> None:
    """RunObject still uses OpenAPI 3.0 `nullable`; the checker must honour it."""
    run = {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 1_700_000_000,
        "thread_id": "thread_1",
        "assistant_id": "asst_abc123",
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": 1_700_000_600,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": "gpt-4o",
        "instructions": "",
        "tools": [],
        "metadata": {},
        "usage": None,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
    }
    validate_response("POST", "/v1/threads/thread_1/runs", 200, run)
    with pytest.raises(AssertionError, match=r"\$\.status"):
        validate_response("POST", "/v1/threads/thread_1/runs", 200, {**run, "status": "done"})


def _client(body: bytes, content_type: str, status: int = 200) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": content_type}
        return httpx.Response(
            status, content=iter([body]), headers=headers
        )  # streamed, like a socket

    return httpx.Client(
        base_url="http://test/v1",
        transport=httpx.MockTransport(handler),
        event_hooks={"response": [contract_hook]},
    )


def test_hook_leaves_body_readable() -> None:
    body = json.dumps(assistant()).encode()
    with _client(body, "application/json") as client:
        assert client.get("/assistants/asst_abc123").json()["id"] == "asst_abc123"
        with client.stream("GET", "/assistants/asst_abc123") as response:
            assert b"".join(response.iter_bytes()) == body


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # beta.assistants
def test_hook_works_under_openai_sdk() -> None:
    openai = pytest.importorskip("openai")
    body = json.dumps(assistant()).encode()
    with _client(body, "application/json") as http_client:
        sdk = openai.OpenAI(api_key="x", base_url="http://test/v1", http_client=http_client)
        assert sdk.beta.assistants.retrieve("asst_abc123").created_at == 1_700_000_000
    bad = json.dumps(assistant(object="foo")).encode()
    with _client(bad, "application/json") as http_client:
        sdk = openai.OpenAI(api_key="x", base_url="http://test/v1", http_client=http_client)
        with pytest.raises(AssertionError, match=r"\$\.object"):
            sdk.beta.assistants.retrieve("asst_abc123")


def test_hook_rejects_bad_json_and_skips_non_json() -> None:
    with _client(b"{}", "application/json") as client, pytest.raises(AssertionError):
        client.get("/assistants/asst_abc123")
    sse = b'event: thread.run.created\ndata: {"id": "run_1"}\n\n'
    with (
        _client(sse, "text/event-stream") as client,
        client.stream("POST", "/threads/thread_1/runs") as response,
    ):
        assert not response.is_stream_consumed  # the hook did not buffer the stream
        assert b"".join(response.iter_bytes()) == sse
