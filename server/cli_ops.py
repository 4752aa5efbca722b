"""`assistd models check` and `assistd usage`: the operator's commands about models."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

Command = Callable[[Any, str, str], argparse.ArgumentParser]


def add_commands(sub: Any, command: Command) -> None:
    models = command(sub, "models", "the models this server routes")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    check = command(
        models_sub,
        "check",
        "check MODELS_CONFIG and ping every route with a one-token call (exit 1 if any fails, "
        "2 if the file is invalid)",
    )
    check.add_argument("--timeout", type=float, default=20.0, help="seconds per ping")
    check.set_defaults(func=_models_check)
    usage = command(sub, "usage", "token usage and cost per day, project and model")
    usage.add_argument("--since", default=None, help="first UTC day, YYYY-MM-DD")
    usage.add_argument("--until", default=None, help="last UTC day, YYYY-MM-DD")
    usage.add_argument("--project", default=None, help="only this project")
    usage.add_argument("--model", default=None, help="only this model")
    usage.add_argument("--by", default="day,project,model", help="groups, comma-separated")
    usage.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    usage.set_defaults(func=_usage)


# -- models check ----------------------------------------------------------------------


def _models_check(args: argparse.Namespace) -> int:
    from server.models_config import ModelsConfigError
    from server.models_config import load as load_config

    settings = Settings.from_env()
    config = None
    if settings.models_config is not None:
        try:
            config = load_config(settings.models_config)
        except ModelsConfigError as exc:
            for line in str(exc).splitlines():
                print(f"assistd: {line}", file=sys.stderr)
            return 2
        print(f"MODELS_CONFIG {settings.models_config}: valid, {len(config.names)} names")
    checks: list[tuple[str, str, dict[str, Any]]] = []
    for entry in config.model_list if config else []:
        params = dict(entry["litellm_params"])
        checks.append((entry["model_name"], f"MODELS_CONFIG: {params.get('model')}", params))
    for pattern in settings.provider_models:
        if not any(ch in pattern for ch in "*?["):
            checks.append((pattern, "ASSISTD_PROVIDER_MODELS", {"model": pattern}))
    rows = asyncio.run(_ping_all(settings, checks, args.timeout))
    if not rows:
        print("assistd: no model is routed: set MODEL_BASE_URL or MODELS_CONFIG", file=sys.stderr)
        return 1
    width = [max(len(row[i]) for row in [("MODEL", "ROUTE", "RESULT"), *rows]) for i in (0, 1)]
    print(f"{'MODEL':<{width[0]}}  {'ROUTE':<{width[1]}}  RESULT")
    for name, route, result in rows:
        print(f"{name:<{width[0]}}  {route:<{width[1]}}  {result}")
    return 0 if all(row[2].startswith("ok") for row in rows) else 1


async def _ping_all(
    settings: Settings, checks: list[tuple[str, str, dict[str, Any]]], timeout: float
) -> list[tuple[str, str, str]]:
    rows = list(
        await asyncio.gather(*(_ping(name, route, p, timeout) for name, route, p in checks))
    )
    if settings.model_base_url:
        rows += await _check_base_url(settings, timeout)
    return rows


async def _ping(
    name: str, route: str, params: dict[str, Any], timeout: float
) -> tuple[str, str, str]:
    """One non-streamed call asking for one token, litellm's own retries off."""
    import litellm

    from server.runs.model_errors import clean

    call = {
        **params,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "num_retries": 0,
        "timeout": timeout,
    }
    started = time.perf_counter()
    try:
        await litellm.acompletion(**call)
    except Exception as exc:
        return name, route, f"FAILED: {clean(str(exc), 160) or exc.__class__.__name__}"
    return name, route, f"ok ({(time.perf_counter() - started) * 1000:.0f} ms)"


async def _check_base_url(settings: Settings, timeout: float) -> list[tuple[str, str, str]]:
    """MODEL_BASE_URL: its /models list, then a ping of the first model it lists."""
    import httpx

    from server.runs.model_errors import clean

    base = (settings.model_base_url or "").rstrip("/")
    key = settings.model_api_key or "none"
    route = "MODEL_BASE_URL"
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"})
            response.raise_for_status()
            listed = [m.get("id") for m in response.json().get("data") or [] if m.get("id")]
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return [("(any name)", route, f"FAILED: /models: {clean(str(exc), 160) or exc!r}")]
    if not listed:
        return [("(any name)", route, "ok: answers, lists no models")]
    params = {"model": f"openai/{listed[0]}", "api_base": base, "api_key": key}
    name, _, result = await _ping(listed[0], route, params, timeout)
    return [(name, route, f"{result}; lists {len(listed)} models")]


# -- usage -----------------------------------------------------------------------------


def _usage_engine() -> Engine | None:
    from sqlalchemy import inspect

    from server.db import make_engine

    url = Settings.from_env().database_url
    where = url.split("@")[-1]
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        print(f"assistd: no database at {where} yet", file=sys.stderr)
        return None
    engine = make_engine(url)
    if inspect(engine).has_table("model_usage"):
        return engine
    engine.dispose()
    print(f"assistd: {where} has no model_usage table: run `assistd migrate`", file=sys.stderr)
    return None


def _usage(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from server.observability.usage import UsageQuery, parse_day, parse_groups, summarise

    try:
        query = UsageQuery(
            start=parse_day(args.since, "--since"),
            end=parse_day(args.until, "--until"),
            project=args.project,
            model=args.model,
            group_by=parse_groups(args.by),
        )
    except ValueError as exc:
        print(f"assistd: {exc}".replace("'group_by'", "--by"), file=sys.stderr)
        return 2
    engine = _usage_engine()
    if engine is None:
        return 1
    try:
        with Session(engine) as session:
            rows = summarise(session, query)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"data": rows, "currency": "USD"}, indent=2))
        return 0
    columns = [*query.group_by, "runs", "model_calls", "input_tokens", "output_tokens", "cost"]
    table = [[_cell(row[c]) for c in columns] for row in rows]
    totals = ["total", *[""] * (len(query.group_by) - 1)]
    for column in columns[len(query.group_by) :]:
        totals.append(_cell(sum(row[column] for row in rows)) if column != "runs" else "")
    width = [max(len(r[i]) for r in [columns, *table, totals]) for i in range(len(columns))]
    for line in [columns, *table, totals]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, width, strict=True)).rstrip())
    return 0


def _cell(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)
