"""What a log line is about: the request id, the caller's project, the run.

One `LogContext` per request (set by the RequestId middleware, the project filled in by
the auth dependency once it is known) and one per run execution (set when the run starts
in its own task). A context variable carries it, so every log record made while serving
that request or run can name them (server/observability/logs.py).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any


@dataclass
class LogContext:
    request_id: str | None = None
    project: str | None = None
    run_id: str | None = None
    thread_id: str | None = None

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}


_current: ContextVar[LogContext | None] = ContextVar("assistd_log_context", default=None)


def current() -> LogContext | None:
    return _current.get()


def begin_request(request_id: str) -> Token[LogContext | None]:
    return _current.set(LogContext(request_id=request_id))


def end(token: Token[LogContext | None]) -> None:
    _current.reset(token)


def note_project(project: str) -> None:
    """The request's caller is in `project` (mutates the request's own context, so the
    access log line written later in the same request sees it too)."""
    context = _current.get()
    if context is not None:
        context.project = project


def enter_run(run: Any) -> None:
    """From here on, this task's records are about `run` (called inside the run's task,
    which owns its copy of the context variables)."""
    outer = _current.get()
    _current.set(
        LogContext(
            request_id=outer.request_id if outer else None,
            project=run.project,
            run_id=run.id,
            thread_id=run.thread_id,
        )
    )
