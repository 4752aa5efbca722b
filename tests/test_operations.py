"""Operating a real server: Prometheus metrics scraped and parsed with prometheus-client's
parser, OpenTelemetry spans received by a real OTLP/HTTP receiver, SSE keep-alives read
raw and through the SDK's stream helper, JSON logs with request, project and run ids,
usage and cost from the admin endpoint and `assistd usage`, and `/docs` offline."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AssistantEventHandler, OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import KEY_ALPHA, KEY_BETA, make_client, server_env
from tests.support.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import ServerProcess, run_server_python
from tests.test_vector_stores import WARRANTY, upload, wait_for

METRICS_KEY = "metrics-secret-1"
ADMIN_KEY = "admin-secret-1"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def ops(tmp_path_factory, scripted, receiver) -> Iterator[ServerProcess]:
    """Traces to the receiver, keep-alives every 0.3 s, JSON logs with the access log,
    metrics behind a key, the admin key set."""
    env = server_env(
        scripted[1],
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        ASSISTD_SSE_KEEPALIVE_SECONDS="0.3",
        ASSISTD_METRICS_KEY=METRICS_KEY,
        ASSISTD_ADMIN_KEY=ADMIN_KEY,
    )
    args = ["--log-format", "json", "--access-log"]
    proc = ServerProcess(tmp_path_factory.mktemp("ops"), env=env, args=args).start()
    yield proc
    proc.stop()


def scrape(url: str, **headers: str) -> dict[str, list[Any]]:
    """name -> samples, parsed by prometheus-client's own parser."""
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def value(families: dict[str, list[Any]], sample: str, **labels: str) -> float:
    family = families.get(sample.removesuffix("_total").removesuffix("_count")) or []
    total = 0.0
    for s in family:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def a_run(client: OpenAI, model_name: str = "gpt-4o") -> Any:
    a = client.beta.assistants.create(model=model_name)
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    return client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)


# -- metrics ---------------------------------------------------------------------------


def test_metrics_count_runs_model_calls_tokens_and_requests(
    server: ServerProcess, client: OpenAI, model: ScriptedModel
) -> None:
    """The session server (defaults): /metrics answers loopback without a key."""
    url = f"{server.base_url}/metrics"
    before = scrape(url)
    model.text("Hello from the metrics test", usage={"prompt_tokens": 11, "completion_tokens": 7})
    model.fail(503, "model is down")
    assert a_run(client, "metrics-model").status == "completed"
    failed = a_run(client, "metrics-model")
    assert failed.status == "failed"
    after = scrape(url)

    def grew(sample: str, **labels: str) -> float:
        return value(after, sample, **labels) - value(before, sample, **labels)

    m = {"model": "metrics-model"}
    assert grew("assistd_runs_total", status="completed", **m) == 1
    assert grew("assistd_runs_total", status="failed", **m) == 1
    assert grew("assistd_runs_total", status="in_progress", **m) == 2
    assert grew("assistd_run_duration_seconds_count", status="completed", **m) == 1
    assert grew("assistd_run_time_to_first_token_seconds_count", **m) == 1
    assert grew("assistd_model_calls_total", outcome="ok", **m) == 1
    assert grew("assistd_model_calls_total", outcome="server_error", **m) == 1
    assert grew("assistd_model_call_errors_total", code="server_error", **m) == 1
    assert grew("assistd_model_call_duration_seconds_count", **m) == 2
    tokens = {"project": "alpha", **m}
    assert grew("assistd_tokens_total", direction="input", **tokens) == 11
    assert grew("assistd_tokens_total", direction="output", **tokens) == 7
    route = "/v1/threads/{thread_id}/runs/{run_id}"
    assert grew("assistd_http_requests_total", method="GET", route=route, status="200") >= 2
    assert grew("assistd_http_requests_total", method="POST", route="/v1/assistants") == 2
    assert value(after, "assistd_runs_queued") == 0
    assert value(after, "assistd_ingest_queue_depth") >= 0
    assert value(after, "assistd_worker_last_tick_timestamp_seconds") > time.time() - 60
    assert value(after, "process_cpu_seconds_total") > 0
    # An unknown URL is one series, not one per path.
    httpx.get(f"{server.base_url}/no/such/{os.getpid()}")
    assert value(scrape(url), "assistd_http_requests_total", route="unmatched", status="404") >= 1


def test_metrics_key_protects_the_endpoint(ops: ServerProcess) -> None:
    url = f"{ops.base_url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "assistd_build_info" in scrape(url, Authorization=f"Bearer {METRICS_KEY}")


# -- traces ----------------------------------------------------------------------------


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


def test_spans_for_request_run_and_model_call(
    ops: ServerProcess, receiver: OTLPReceiver, model: ScriptedModel
) -> None:
    c = make_client(ops.base_url, KEY_ALPHA)
    a = c.beta.assistants.create(model="gpt-4o", temperature=0.5)
    t = c.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    model.text("traced answer", usage={"prompt_tokens": 21, "completion_tokens": 4})
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with httpx.stream(
        "POST",
        f"{ops.base_url}/v1/threads/{t.id}/runs",
        json={"assistant_id": a.id, "stream": True},
        headers={"Authorization": f"Bearer {KEY_ALPHA}", "traceparent": parent},
        timeout=30,
    ) as response:
        body = b"".join(response.iter_bytes()).decode()
    run_id = json.loads(body.split("data: ", 2)[1].split("\n", 1)[0])["id"]

    def complete(spans: list[ReceivedSpan]) -> bool:
        if not any(s.trace_id == "0af7651916cd43dd8448eb211c80319c" and s.kind == 2 for s in spans):
            return False
        return any(
            s.name == "chat gpt-4o" and s.attributes.get("assistd.run.id") == run_id for s in spans
        ) and any(
            s.attributes.get("assistd.run.id") == run_id for s in by_name(spans, "invoke_agent")
        )

    spans = receiver.wait_for(complete)
    request = next(
        s
        for s in by_name(spans, "POST /v1/threads/{thread_id}/runs")
        if s.trace_id == "0af7651916cd43dd8448eb211c80319c"
    )
    assert request.parent_id == "b7ad6b7169203331"  # the incoming traceparent was honoured
    assert request.kind == 2  # SERVER
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.route"] == "/v1/threads/{thread_id}/runs"
    assert request.attributes["assistd.project"] == "alpha"
    assert request.resource["service.name"] == "assistd"
    run = next(
        s for s in by_name(spans, "invoke_agent") if s.attributes["assistd.run.id"] == run_id
    )
    assert run.parent_id == request.span_id and run.trace_id == request.trace_id
    assert run.attributes["assistd.thread.id"] == t.id
    assert run.attributes["assistd.run.status"] == "completed"
    call = next(
        s for s in by_name(spans, "chat gpt-4o") if s.attributes["assistd.run.id"] == run_id
    )
    assert call.parent_id == run.span_id and call.kind == 3  # CLIENT
    attrs = call.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["assistd.thread.id"] == t.id


def test_a_failed_model_call_is_an_error_span(
    ops: ServerProcess, receiver: OTLPReceiver, model: ScriptedModel
) -> None:
    model.fail(500, "upstream exploded")
    run = a_run(make_client(ops.base_url, KEY_ALPHA))
    assert run.status == "failed"
    spans = receiver.wait_for(
        lambda ss: any(
            s.attributes.get("assistd.run.id") == run.id and s.name == "chat gpt-4o" for s in ss
        )
    )
    call = next(
        s for s in spans if s.attributes.get("assistd.run.id") == run.id and "chat" in s.name
    )
    assert call.status_code == 2 and call.attributes["error.type"] == "server_error"  # ERROR


def test_file_search_is_a_tool_span_and_ingestion_is_counted(
    ops: ServerProcess, receiver: OTLPReceiver, model: ScriptedModel, tmp_path: Path
) -> None:
    c = make_client(ops.base_url, KEY_ALPHA)
    f = upload(c, tmp_path, "warranty.md", WARRANTY)
    store = c.vector_stores.create(name="Docs", file_ids=[f.id])
    (done,) = wait_for(c, store.id, f.id)
    assert done.status == "completed"
    a = c.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    model.tool_calls([{"name": "file_search", "arguments": {"queries": ["warranty"]}}])
    model.text("Three years 【0:0†warranty.md】.")
    t = c.beta.threads.create(messages=[{"role": "user", "content": "warranty?"}])
    run = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"

    def ours(name: str, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in by_name(spans, name) if s.attributes["assistd.run.id"] == run.id]

    spans = receiver.wait_for(
        lambda ss: ours("execute_tool file_search", ss) and ours("invoke_agent", ss)
    )
    (tool,) = ours("execute_tool file_search", spans)
    (run_span,) = ours("invoke_agent", spans)
    assert tool.parent_id == run_span.span_id
    assert tool.attributes["gen_ai.tool.name"] == "file_search"
    assert tool.attributes["gen_ai.tool.call.id"].startswith("call_")
    families = scrape(f"{ops.base_url}/metrics", Authorization=f"Bearer {METRICS_KEY}")
    assert value(families, "assistd_ingest_files_total", outcome="completed") == 1
    assert value(families, "assistd_ingest_chunks_total") >= 1
    assert value(families, "assistd_ingest_duration_seconds_count") == 1
    assert value(families, "assistd_tool_executions_total", kind="file_search", outcome="ok") == 1


# -- streams ---------------------------------------------------------------------------


def test_a_waiting_stream_sends_keep_alive_comments(ops: ServerProcess, model: ScriptedModel):
    c = make_client(ops.base_url, KEY_ALPHA)
    a = c.beta.assistants.create(model="gpt-4o")
    t = c.beta.threads.create(messages=[{"role": "user", "content": "slow?"}])
    model.stall(1.2, "finally")
    lines = []
    with httpx.stream(
        "POST",
        f"{ops.base_url}/v1/threads/{t.id}/runs",
        json={"assistant_id": a.id, "stream": True},
        headers={"Authorization": f"Bearer {KEY_ALPHA}"},
        timeout=30,
    ) as response:
        lines = list(response.iter_lines())
    comments = [line for line in lines if line.startswith(":")]
    assert len(comments) >= 2 and set(comments) == {": keep-alive"}
    assert "event: thread.run.completed" in lines
    # The SDK's SSE parser skips them: its stream helper sees only real events.
    model.stall(1.0, "again")
    events: list[str] = []

    class Handler(AssistantEventHandler):
        def on_event(self, event: Any) -> None:
            events.append(event.event)

    t2 = c.beta.threads.create(messages=[{"role": "user", "content": "slow again?"}])
    with c.beta.threads.runs.stream(
        thread_id=t2.id, assistant_id=a.id, event_handler=Handler()
    ) as s:
        s.until_done()
    assert events[0] == "thread.run.created" and events[-1] == "thread.run.completed"
    assert "thread.message.completed" in events
    messages = c.beta.threads.messages.list(thread_id=t2.id)
    assert messages.data[0].content[0].text.value == "again"


# -- logs ------------------------------------------------------------------------------


def json_lines(proc: ServerProcess) -> list[dict[str, Any]]:
    out = []
    for line in proc.log().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_json_logs_carry_request_id_project_and_run(
    ops: ServerProcess, model: ScriptedModel
) -> None:
    r = httpx.get(
        f"{ops.base_url}/v1/assistants",
        headers={"Authorization": f"Bearer {KEY_BETA}", "x-request-id": "req-from-client-42"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-from-client-42"
    model.fail(500, "for the log")
    run = a_run(make_client(ops.base_url, KEY_ALPHA))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = json_lines(ops)
        access = [
            r
            for r in records
            if r["logger"] == "uvicorn.access" and r.get("request_id") == "req-from-client-42"
        ]
        failed = [r for r in records if r.get("run_id") == run.id and "failed" in r["message"]]
        if access and failed:
            break
        time.sleep(0.1)
    assert access and access[0]["project"] == "beta" and access[0]["status"] == 200
    assert access[0]["path"] == "/v1/assistants" and access[0]["method"] == "GET"
    assert failed[0]["project"] == "alpha" and failed[0]["thread_id"] == run.thread_id
    assert all(not line or line.startswith("{") for line in ops.log().splitlines()), (
        "every line is JSON"
    )


def test_probes_and_key_commands_do_not_log_alembic(server: ServerProcess) -> None:
    for _ in range(3):
        assert httpx.get(f"{server.base_url}/ready").status_code == 200
    time.sleep(0.3)
    assert "alembic" not in server.log().lower()
    env = {**os.environ, "DATABASE_URL": server.database_url, "ASSISTD_API_KEYS": ""}
    done = run_server_python(["-m", "server", "keys", "create", "--project", "logs"], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr  # just the one note
    assert done.stdout.startswith("sk-assistd-")


def test_log_level_warning_is_respected_and_metrics_can_move_to_their_own_port(
    tmp_path: Path, scripted
) -> None:
    from tests.support.server_process import free_port

    port = free_port()
    env = server_env(scripted[1], ASSISTD_METRICS_PORT=str(port))
    proc = ServerProcess(tmp_path, env=env, args=["--log-level", "warning"]).start()
    try:
        a_run(make_client(proc.base_url, KEY_ALPHA))
        assert httpx.get(f"{proc.base_url}/metrics").status_code == 404
        families = scrape(f"http://127.0.0.1:{port}/metrics")
        assert value(families, "assistd_runs_total", status="completed") == 1
    finally:
        proc.stop()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert not [line for line in lines if " INFO " in line], lines


# -- usage -----------------------------------------------------------------------------


def test_usage_per_project_model_and_day_from_the_endpoint_and_the_cli(
    ops: ServerProcess, model: ScriptedModel
) -> None:
    url = f"{ops.base_url}/admin/usage"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {KEY_ALPHA}"}).status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    before = httpx.get(url, headers=admin, params={"project": "beta"}).json()["total"]
    model.text("one", usage={"prompt_tokens": 100, "completion_tokens": 10})
    model.text("two", usage={"prompt_tokens": 50, "completion_tokens": 5})
    beta = make_client(ops.base_url, KEY_BETA)
    first = a_run(beta, "usage-model")
    assert first.usage.prompt_tokens == 100  # the run keeps its own usage
    a_run(beta, "usage-model")
    r = httpx.get(url, headers=admin, params={"project": "beta", "model": "usage-model"})
    assert r.status_code == 200, r.text
    (row,) = r.json()["data"]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert row == {
        "day": today,
        "project": "beta",
        "model": "usage-model",
        "model_calls": 2,
        "runs": 2,
        "input_tokens": 150,
        "output_tokens": 15,
        "cost": 0.0,  # a local model (the catch-all) costs nothing
    }
    total = httpx.get(url, headers=admin, params={"project": "beta"}).json()["total"]
    assert total["input_tokens"] - before["input_tokens"] == 150
    bad = httpx.get(url, headers=admin, params={"group_by": "week"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
    env = {**os.environ, "DATABASE_URL": ops.database_url}
    done = run_server_python(
        ["-m", "server", "usage", "--project", "beta", "--by", "project,model", "--json"], env
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["data"]
    assert {"project": "beta", "model": "usage-model", "input_tokens": 150}.items() <= next(
        r for r in rows if r["model"] == "usage-model"
    ).items()
    table = run_server_python(["-m", "server", "usage", "--project", "beta"], env)
    assert table.returncode == 0 and "usage-model" in table.stdout and "total" in table.stdout


# -- docs ------------------------------------------------------------------------------


def test_docs_are_served_offline_and_need_a_key(server: ServerProcess) -> None:
    url = f"{server.base_url}/docs"
    refused = httpx.get(url)
    assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
    basic = base64.b64encode(f"me:{KEY_ALPHA}".encode()).decode()
    page = httpx.get(url, headers={"Authorization": f"Basic {basic}"})
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert httpx.get(url, headers={"Authorization": f"Bearer {KEY_ALPHA}"}).status_code == 200
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = httpx.get(f"{server.base_url}/docs/static/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000
    assert httpx.get(f"{server.base_url}/redoc").status_code == 404
