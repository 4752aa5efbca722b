"""OpenTelemetry traces: a span per HTTP request (http.py), per run execution, per model
call (GenAI semantic conventions) and per server-side tool execution (file_search,
code_interpreter), exported over OTLP.

Off unless the standard variables ask for it: `OTEL_TRACES_EXPORTER` (otlp, console,
none) or an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` wins over both. The SDK
itself reads the rest (`OTEL_EXPORTER_OTLP_PROTOCOL`, headers, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from server import __version__, run_states
from server.models import Run
from server.runs.observe import ModelCall, RunObserver

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from server.tools.base import ToolCall

log = logging.getLogger("assistd.tracing")


def enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return False
    exporters = (env.get("OTEL_TRACES_EXPORTER") or "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def start(env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """A tracer provider exporting as the OTEL_* variables say, or None when off."""
    if env is None:
        # compose passes unset settings through as empty strings; to the SDK an empty
        # OTEL_* variable is a value (an empty endpoint, an unknown sampler).
        for name in [k for k, v in os.environ.items() if k.startswith("OTEL_") and not v.strip()]:
            del os.environ[name]
        env = os.environ
    if not enabled(env):
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes: dict[str, Any] = {"service.version": __version__}
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes[SERVICE_NAME] = "assistd"
    provider = TracerProvider(resource=Resource.create(attributes))
    names = [n.strip() for n in (env.get("OTEL_TRACES_EXPORTER") or "otlp").lower().split(",")]
    for name in names:
        if name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(env)))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER: unknown exporter %r ignored", name)
    trace.set_tracer_provider(provider)
    log.info("traces: exported (%s)", ", ".join(names))
    return provider


def _otlp_exporter(env: Mapping[str, str]) -> Any:
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol.strip().lower() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return HTTPSpanExporter()


def tracer(provider: TracerProvider) -> Tracer:
    return provider.get_tracer("assistd", __version__)


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1e9)


def run_attributes(run: Run) -> dict[str, Any]:
    return {
        "assistd.run.id": run.id,
        "assistd.thread.id": run.thread_id,
        "assistd.project": run.project,
        "gen_ai.conversation.id": run.thread_id,
        "gen_ai.agent.id": run.assistant_id,
    }


def provider_name(route: str) -> str:
    """gen_ai.provider.name from ModelClient.route_of's words."""
    if route.startswith("litellm provider "):
        return route.removeprefix("litellm provider ")
    if route.startswith("MODELS_CONFIG: ") and "/" in route:
        return route.removeprefix("MODELS_CONFIG: ").split("/", 1)[0]
    return "openai"  # MODEL_BASE_URL speaks OpenAI's chat completions


class TracingObserver(RunObserver):
    """Run, model-call and tool spans; a run's spans are children of its run span, and a
    streamed run's span a child of the request that streams it."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._runs: dict[str, Span] = {}
        self._calls: dict[tuple[str, int], Span] = {}
        self._tools: dict[tuple[str, str], Span] = {}

    def _context(self, run: Run) -> Any:
        span = self._runs.get(run.id)
        return trace.set_span_in_context(span) if span is not None else None

    async def run_status(self, run: Run, previous: str) -> None:
        if run.status == run_states.IN_PROGRESS:
            self._runs[run.id] = self.tracer.start_span(
                "invoke_agent",
                kind=SpanKind.INTERNAL,
                attributes={
                    **run_attributes(run),
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.request.model": run.model,
                },
            )
            return
        span = self._runs.get(run.id)
        if span is None:
            return
        if run.status in run_states.TERMINAL or run.status == run_states.REQUIRES_ACTION:
            del self._runs[run.id]
            span.set_attribute("assistd.run.status", run.status)
            usage = run.usage or {}
            if usage:
                span.set_attribute("gen_ai.usage.input_tokens", usage.get("prompt_tokens", 0))
                span.set_attribute("gen_ai.usage.output_tokens", usage.get("completion_tokens", 0))
            if run.status == run_states.FAILED:
                error = run.last_error or {}
                span.set_attribute("error.type", str(error.get("code") or "failed"))
                span.set_status(Status(StatusCode.ERROR, str(error.get("message") or "")))
            span.end()

    async def model_call_started(self, call: ModelCall) -> None:
        request, run = call.request, call.run
        attributes: dict[str, Any] = {
            **run_attributes(run),
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_name(call.route),
            "gen_ai.request.model": request.model,
            "assistd.model.route": call.route,
            "assistd.model_call.number": call.number,
        }
        for name, value in (
            ("gen_ai.request.temperature", request.temperature),
            ("gen_ai.request.top_p", request.top_p),
            ("gen_ai.request.max_tokens", request.max_tokens),
        ):
            if value is not None:
                attributes[name] = value
        span = self.tracer.start_span(
            f"chat {request.model}",
            context=self._context(run),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=_ns(call.started_at),
        )
        self._calls[(run.id, call.number)] = span

    async def model_call_ended(self, call: ModelCall) -> None:
        span = self._calls.pop((call.run.id, call.number), None)
        if span is None:
            return
        if call.finish is not None:
            reasons = [call.finish.reason] if call.finish.reason else []
            span.set_attribute("gen_ai.response.finish_reasons", reasons)
            usage = call.usage
            if usage:
                span.set_attribute("gen_ai.usage.input_tokens", usage.get("prompt_tokens", 0))
                span.set_attribute("gen_ai.usage.output_tokens", usage.get("completion_tokens", 0))
        if call.first_token_at is not None:
            span.set_attribute("assistd.time_to_first_token", call.first_token_at - call.started_at)
        if call.tool_calls:
            span.set_attribute("assistd.tool_calls", len(call.tool_calls))
        if call.cancelled:
            span.set_attribute("assistd.cancelled", True)
        if call.error is not None:
            span.set_attribute("error.type", call.error[0])
            span.set_status(Status(StatusCode.ERROR, call.error[1]))
        span.end(end_time=_ns(call.ended_at))

    async def tools_started(self, run: Run, kind: str, calls: Sequence[ToolCall]) -> None:
        span = self.tracer.start_span(
            f"execute_tool {kind}",
            context=self._context(run),
            kind=SpanKind.INTERNAL,
            attributes={
                **run_attributes(run),
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": kind,
                "gen_ai.tool.type": "extension",
                "gen_ai.tool.call.id": calls[0].id if calls else "",
                "assistd.tool.call_ids": [call.id for call in calls],
            },
        )
        self._tools[(run.id, kind)] = span

    async def tools_ended(
        self, run: Run, kind: str, calls: Sequence[ToolCall], seconds: float, error: str | None
    ) -> None:
        span = self._tools.pop((run.id, kind), None)
        if span is None:
            return
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()
