"""Wiring for server/app.py: the middleware, the observers, the scrape-time gauges, the
metrics port, and the start-up line saying which models are routed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from sandbox.sessions import SandboxManager
from server import run_states
from server.config import Settings
from server.db import Database
from server.models import Run, VectorStoreFile
from server.observability import log_context, metrics, tracing
from server.observability.http import Observe
from server.observability.usage import UsageObserver
from server.runs.model_client import ModelClient
from server.runs.observe import Observers, RunObserver
from server.runs.runner import Runner
from server.runs.worker import Worker

log = logging.getLogger("assistd")


class RunLogContext(RunObserver):
    """Puts the run into the log context of the task that executes it, as it starts."""

    async def run_status(self, run: Run, previous: str) -> None:
        if run.status == run_states.IN_PROGRESS:
            log_context.enter_run(run)


@dataclass
class Operations:
    settings: Settings
    provider: Any = None  # the TracerProvider when traces are on
    collector: metrics.StateCollector | None = None
    servers: list[Any] = field(default_factory=list)

    def install(self, app: FastAPI) -> None:
        """The Observe middleware, when metrics or traces are on (call before start-up)."""
        self.provider = tracing.start()
        tracer = tracing.tracer(self.provider) if self.provider is not None else None
        if self.settings.metrics_enabled or tracer is not None:
            app.add_middleware(Observe, metrics_on=self.settings.metrics_enabled, tracer=tracer)

    def observe(self, observers: Observers, db: Database, models: ModelClient) -> None:
        observers.add(RunLogContext())  # first: the others' log records name the run
        if self.settings.metrics_enabled:
            observers.add(metrics.MetricsObserver())
        if self.provider is not None:
            observers.add(tracing.TracingObserver(tracing.tracer(self.provider)))
        observers.add(UsageObserver(db, models))

    def start(
        self, engine: Engine, runner: Runner, worker: Worker, sandbox: SandboxManager | None
    ) -> None:
        if not self.settings.metrics_enabled:
            return
        readers: dict[str, tuple[str, Any]] = {
            "assistd_runs_executing": (
                "Runs this process is executing now.",
                lambda: len(runner.live.ids()),
            ),
            "assistd_worker_last_tick_timestamp_seconds": (
                "When this process's worker loop last completed a tick (Unix time).",
                lambda: worker.last_tick or None,
            ),
            "assistd_runs_queued": (
                "Runs waiting in the database for a worker (shared by every process).",
                lambda: _count(engine, Run, Run.status == run_states.QUEUED),
            ),
            "assistd_ingest_queue_depth": (
                "Vector store files waiting or being ingested (shared by every process).",
                lambda: _count(engine, VectorStoreFile, VectorStoreFile.status == "in_progress"),
            ),
        }
        if sandbox is not None:
            readers["assistd_sandbox_sessions_live"] = (
                "Code-interpreter sessions open in this process.",
                sandbox.live_sessions,
            )
            readers["assistd_sandbox_sessions_started"] = (
                "Code-interpreter sessions started for a thread since this process started.",
                lambda: sandbox.sessions_started,
            )
            readers["assistd_sandbox_sessions_evicted"] = (
                "Code-interpreter sessions removed after idling past ASSISTD_SANDBOX_TTL.",
                lambda: sandbox.sessions_evicted,
            )
        self.collector = metrics.StateCollector(readers)
        metrics.REGISTRY.register(self.collector)
        if self.settings.metrics_port is not None:
            from prometheus_client import start_http_server

            server, thread = start_http_server(
                self.settings.metrics_port, self.settings.metrics_address, metrics.REGISTRY
            )
            self.servers.append(server)
            log.info(
                "metrics: http://%s:%d/metrics",
                self.settings.metrics_address,
                self.settings.metrics_port,
            )

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.servers.clear()
        if self.collector is not None:
            metrics.REGISTRY.unregister(self.collector)
            self.collector = None
        if self.provider is not None:
            self.provider.shutdown()  # flushes the spans still queued


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def log_routes(settings: Settings, models: ModelClient) -> None:
    """Say at start-up which model names are served, and how."""
    parts = []
    if models.config is not None:
        names = ", ".join(models.config.names)
        parts.append(f"MODELS_CONFIG ({models.config.path}) routes {names}")
        for chain in models.config.fallbacks:
            for primary, backups in chain.items():
                parts.append(f"{primary} falls back to {backups}")
    if settings.provider_models:
        parts.append(f"provider names allowed: {', '.join(settings.provider_models)}")
    if settings.model_base_url:
        url = urlsplit(settings.model_base_url)
        where = f"{url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}{url.path}"
        parts.append(f"MODEL_BASE_URL ({where}) serves every other name")
    if not parts:
        log.warning(
            "models: none routed, so assistants and runs will be refused: set MODEL_BASE_URL "
            "(an OpenAI-compatible endpoint) or MODELS_CONFIG (docs/models.md)"
        )
        return
    log.info("models: %s", "; ".join(parts))
