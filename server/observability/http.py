"""One ASGI middleware for request metrics and request spans.

Both need the route template (`/v1/threads/{thread_id}/runs`, never the ids), which the
router writes into the scope while handling the request, so they are recorded when the
response ends. With metrics and traces off this middleware is not installed at all.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, set_span_in_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.observability import log_context, metrics


class Observe:
    def __init__(self, app: ASGIApp, *, metrics_on: bool, tracer: Tracer | None) -> None:
        self.app = app
        self.metrics_on = metrics_on
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        span = None
        token = None
        if self.tracer is not None:
            carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            parent = propagate.extract(carrier)
            span = self.tracer.start_span(
                scope["method"],
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": scope["method"],
                    "url.path": scope["path"],
                    "url.scheme": scope.get("scheme", "http"),
                },
            )
            token = otel_context.attach(set_span_in_context(span, parent))

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = metrics.route_template(scope)
            if self.metrics_on:
                method = scope["method"]
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            if span is not None:
                _finish(span, scope, route, status)
            if token is not None:
                otel_context.detach(token)


def _finish(span: Any, scope: Scope, route: str, status: int) -> None:
    span.update_name(f"{scope['method']} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    context = log_context.current()
    if context is not None:
        for name, value in context.fields().items():
            span.set_attribute(f"assistd.{name}", value)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
