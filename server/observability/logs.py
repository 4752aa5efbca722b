"""Logging for every command: one handler on the root logger, the level of `--log-level`
for assistd and uvicorn, libraries quiet below WARNING unless debugging, and either
text or JSON lines (`--log-format json`) carrying the request id, project and run id.

Why libraries are held at WARNING: Alembic logs two INFO lines each time it looks at the
schema (every `/ready` probe) and seven for every migration check (every `assistd keys`
call); litellm, httpx and Chroma log per call. At `--log-level debug` they all speak.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from server.observability import log_context

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")
QUIET = (
    "alembic",
    "LiteLLM",
    "LiteLLM Router",
    "LiteLLM Proxy",
    "httpx",
    "httpcore",
    "chromadb",
    "sentence_transformers",
    "transformers",
    "huggingface_hub",
    "docker",
    "urllib3",
    "opentelemetry",
    "multipart",
    "filelock",
    "asyncio",
    "markitdown",
    "pypdf",
)
_CONTEXT_FIELDS = ("request_id", "project", "run_id", "thread_id")


class ContextFilter(logging.Filter):
    """Adds the current LogContext's fields to every record (None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = log_context.current()
        for name in _CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, getattr(context, name, None) if context else None)
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(
            f"{name}={value}"
            for name in _CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        )
        if not extra:
            return line
        head, sep, rest = line.partition("\n")  # keep a traceback below the context
        return f"{head} [{extra}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields when
    known, the access log's method/path/status, and the exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            args = record.args
            if len(args) == 5:
                out.update(client=args[0], method=args[1], path=args[2], status=args[4])
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _iso(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


_handler: logging.Handler | None = None
_level = logging.INFO


def configure(level: str = "info", fmt: str = "text") -> None:
    """Install the one handler (again, replacing ours) and set every logger's level."""
    global _handler, _level
    _level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.addFilter(ContextFilter())
    _handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(_handler)
    root.setLevel(_level)
    logging.captureWarnings(True)  # Python warnings become records too (JSON lines)
    logging.getLogger("py.warnings").setLevel(library_level())
    for name in ("assistd", "server", "sandbox", "retrieval", "uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(_level)
    adopt("uvicorn", "uvicorn.error", "uvicorn.access")
    for name in QUIET:
        logging.getLogger(name).setLevel(library_level())
    adopt("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


def library_level() -> int:
    return _level if _level <= logging.DEBUG else max(logging.WARNING, _level)


def adopt(*names: str) -> None:
    """Route these loggers through our handler: drop the handlers they bring (litellm
    adds its own on import, uvicorn its own in its default config)."""
    if _handler is None:
        return
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        if name.startswith("LiteLLM"):
            logger.setLevel(library_level())
