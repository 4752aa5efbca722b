"""Prometheus metrics of one process, in the standard text format at `/metrics`.

Counters and histograms are updated where things happen: HTTP requests in the Observe
middleware (http.py), runs, model calls, tokens and tool executions through the run
observer seam (`MetricsObserver`), ingestion through its hook. Gauges that describe
state (sandbox sessions, the queues in the database, the worker's last tick) are read
when scraped (`StateCollector`), so nothing polls in between.

Each process serves its own numbers (compose runs several: scrape each one). The queue
gauges count rows in the shared database, so every process reports the same value.

Label values that clients choose (model names) are capped: past `MAX_MODELS` distinct
names the rest are counted as `other`, so a client naming random models cannot grow
the series without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from server import __version__, run_states
from server.models import Run
from server.runs.observe import ModelCall, RunObserver

if TYPE_CHECKING:
    from server.tools.base import ToolCall

log = logging.getLogger("assistd.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SLOW = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)

BUILD = Gauge("assistd_build_info", "The running version.", ["version"], registry=REGISTRY)
BUILD.labels(__version__).set(1)
HTTP_REQUESTS = Counter(
    "assistd_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "assistd_http_request_duration_seconds",
    "Time to answer a request (a streamed run: until its stream ends).",
    ["method", "route"],
    buckets=_FAST,
    registry=REGISTRY,
)
RUNS = Counter(
    "assistd_runs",
    "Runs entering each status (terminal ones: runs finished that way), by model.",
    ["status", "model"],
    registry=REGISTRY,
)
RUN_SECONDS = Histogram(
    "assistd_run_duration_seconds",
    "From a run's start to its end or its wait for tool outputs, by model and status.",
    ["model", "status"],
    buckets=_SLOW,
    registry=REGISTRY,
)
RUN_FIRST_TOKEN = Histogram(
    "assistd_run_time_to_first_token_seconds",
    "From a run's start to the first token of its first model call.",
    ["model"],
    buckets=_SLOW,
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "assistd_model_calls",
    "Model calls by model and outcome (ok, cancelled, or the error code).",
    ["model", "outcome"],
    registry=REGISTRY,
)
MODEL_ERRORS = Counter(
    "assistd_model_call_errors",
    "Failed model calls by model and error code.",
    ["model", "code"],
    registry=REGISTRY,
)
MODEL_SECONDS = Histogram(
    "assistd_model_call_duration_seconds",
    "Model call latency, request to the end of the stream.",
    ["model"],
    buckets=_SLOW,
    registry=REGISTRY,
)
MODEL_FIRST_TOKEN = Histogram(
    "assistd_model_time_to_first_token_seconds",
    "Model call latency to its first token.",
    ["model"],
    buckets=_SLOW,
    registry=REGISTRY,
)
TOKENS = Counter(
    "assistd_tokens",
    "Tokens by model, project and direction (input: prompt, output: completion).",
    ["model", "project", "direction"],
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    "assistd_tool_executions",
    "Server-side tool calls executed, by kind and outcome (ok or the error code).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
TOOL_SECONDS = Histogram(
    "assistd_tool_execution_duration_seconds",
    "Time to execute one turn's calls of a server-side tool.",
    ["kind"],
    buckets=_SLOW,
    registry=REGISTRY,
)
INGEST_FILES = Counter(
    "assistd_ingest_files",
    "Files ingested into vector stores, by outcome (completed or the error code).",
    ["outcome"],
    registry=REGISTRY,
)
INGEST_CHUNKS = Counter(
    "assistd_ingest_chunks", "Chunks indexed (rate(): chunks per second).", registry=REGISTRY
)
INGEST_SECONDS = Histogram(
    "assistd_ingest_duration_seconds",
    "Time to parse, chunk, embed and index one file.",
    buckets=_SLOW,
    registry=REGISTRY,
)

MAX_MODELS = 100
_models: set[str] = set()
_models_lock = threading.Lock()


def model_label(model: str) -> str:
    if model in _models:
        return model
    with _models_lock:
        if len(_models) < MAX_MODELS:
            _models.add(model)
            return model
    return "other"


def route_template(scope: MutableMapping[str, Any]) -> str:
    """`/v1/threads/{thread_id}/runs`, never the ids themselves; `unmatched` for 404s."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsObserver(RunObserver):
    """Runs, model calls, tokens and tool executions, through the run-observer seam."""

    def __init__(self) -> None:
        # When each run started executing here (wall clock, as ModelCall's times), and
        # whether its first token was counted: the run's own timestamps are whole seconds.
        self._started: dict[str, float] = {}
        self._first_token_seen: set[str] = set()

    async def run_status(self, run: Run, previous: str) -> None:
        model = model_label(run.model)
        RUNS.labels(run.status, model).inc()
        if run.status == run_states.IN_PROGRESS:
            self._started[run.id] = time.time()
            self._first_token_seen.discard(run.id)
        elif run.status in run_states.TERMINAL or run.status == run_states.REQUIRES_ACTION:
            started = self._started.pop(run.id, None)
            self._first_token_seen.discard(run.id)
            if started is not None:
                RUN_SECONDS.labels(model, run.status).observe(max(0.0, time.time() - started))
            elif run.started_at and run.status in run_states.TERMINAL:
                RUN_SECONDS.labels(model, run.status).observe(max(0, time.time() - run.started_at))

    async def model_call_ended(self, call: ModelCall) -> None:
        model = model_label(call.request.model)
        run = call.run
        if call.cancelled:
            outcome = "cancelled"
        elif call.error is not None:
            outcome = call.error[0]
            MODEL_ERRORS.labels(model, outcome).inc()
        else:
            outcome = "ok"
        MODEL_CALLS.labels(model, outcome).inc()
        if call.latency is not None:
            MODEL_SECONDS.labels(model).observe(call.latency)
        if call.first_token_at is not None:
            MODEL_FIRST_TOKEN.labels(model).observe(call.first_token_at - call.started_at)
            if run.id not in self._first_token_seen:
                self._first_token_seen.add(run.id)
                started = self._started.get(run.id, call.started_at)
                RUN_FIRST_TOKEN.labels(model).observe(max(0.0, call.first_token_at - started))
        usage = call.usage
        if usage:
            TOKENS.labels(model, run.project, "input").inc(usage.get("prompt_tokens", 0))
            TOKENS.labels(model, run.project, "output").inc(usage.get("completion_tokens", 0))

    async def tools_ended(
        self, run: Run, kind: str, calls: Sequence[ToolCall], seconds: float, error: str | None
    ) -> None:
        TOOL_CALLS.labels(kind, error or "ok").inc(len(calls))
        TOOL_SECONDS.labels(kind).observe(seconds)

    async def ingest_ended(
        self, store_id: str, file_id: str, chunks: int, seconds: float, error: str | None
    ) -> None:
        ingested(chunks, seconds, error)


def ingested(chunks: int, seconds: float, error_code: str | None) -> None:
    INGEST_FILES.labels(error_code or "completed").inc()
    if not error_code:
        INGEST_CHUNKS.inc(chunks)
    INGEST_SECONDS.observe(seconds)


class StateCollector(Collector):
    """Gauges read at scrape time from the process's parts: `readers` maps a metric to a
    function returning its value, or None to leave it out of this scrape."""

    def __init__(self, readers: dict[str, tuple[str, Callable[[], float | None]]]) -> None:
        self.readers = readers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (help_text, read) in self.readers.items():
            try:
                value = read()
            except Exception as exc:  # a scrape reports what it can
                log.debug("metric %s unavailable: %s", name, exc)
                continue
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
