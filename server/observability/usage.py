"""Token usage and cost per project, model and day.

Each model call that finishes with usage writes one `model_usage` row (UsageObserver,
on the run-observer seam), so the totals survive restarts and add up across replicas;
`assistd usage` and `GET /admin/usage` sum them.

Cost comes from litellm's cost map, the copy bundled with litellm
(LITELLM_LOCAL_MODEL_COST_MAP=True: nothing is fetched), looked up by what the route
really calls, with prices in MODELS_CONFIG taking precedence (`model_info` or
`litellm_params`: `input_cost_per_token`, `output_cost_per_token`). Local models cost 0:
the MODEL_BASE_URL catch-all, and MODELS_CONFIG entries with their own `api_base`, are
self-hosted endpoints unless priced in the file; names litellm does not know cost 0.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

import litellm
from sqlalchemy import func
from sqlmodel import Session, select

from server.db import Database
from server.ids import now
from server.models import ModelUsage
from server.runs.model_client import ModelClient
from server.runs.observe import ModelCall, RunObserver

log = logging.getLogger("assistd.usage")
GROUPS = ("day", "project", "model")


def cost_of(client: ModelClient, model: str, input_tokens: int, output_tokens: int) -> float:
    """US dollars for a call of `model` as this server routes it (0 when unknown/local)."""
    config = client.config
    prices = config.prices(model) if config is not None else None
    if prices is not None:
        return input_tokens * prices[0] + output_tokens * prices[1]
    kind = client.kind(model)
    if kind in ("direct", "router") and config is not None:
        params = config.deployments(model)[0].get("litellm_params") or {}
        if params.get("api_base"):
            return 0.0  # a self-hosted endpoint
        name = str(params.get("model") or model)
    elif kind == "provider":
        name = model
    else:
        return 0.0  # the catch-all: a local endpoint
    try:
        prompt, completion = litellm.cost_per_token(
            model=name, prompt_tokens=input_tokens, completion_tokens=output_tokens
        )
    except Exception:  # not in the cost map: an unknown or local model
        return 0.0
    return float(prompt) + float(completion)


def record(session: Session, row: ModelUsage) -> None:
    session.add(row)
    session.commit()


class UsageObserver(RunObserver):
    def __init__(self, db: Database, client: ModelClient) -> None:
        self.db = db
        self.client = client

    async def model_call_ended(self, call: ModelCall) -> None:
        usage = call.usage
        tokens_in, tokens_out = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        if not tokens_in and not tokens_out:
            return
        model = call.request.model
        ended = call.ended_at or call.started_at
        row = ModelUsage(
            project=call.run.project,
            day=datetime.datetime.fromtimestamp(ended, datetime.UTC).date().isoformat(),
            model=model[:256],
            run_id=call.run.id,
            thread_id=call.run.thread_id,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost_of(self.client, model, tokens_in, tokens_out),
            created_at=now(),
        )
        await self.db.run(record, row)


@dataclass
class UsageQuery:
    start: str | None = None  # YYYY-MM-DD, inclusive (UTC days)
    end: str | None = None  # inclusive
    project: str | None = None
    model: str | None = None
    group_by: tuple[str, ...] = GROUPS


def summarise(session: Session, query: UsageQuery) -> list[dict[str, Any]]:
    """Sums per group (day, project, model by default), ordered by the groups."""
    columns = [getattr(ModelUsage, name) for name in query.group_by]
    statement = select(  # type: ignore[call-overload]
        *columns,
        func.count().label("model_calls"),
        func.count(func.distinct(ModelUsage.run_id)).label("runs"),
        func.sum(ModelUsage.input_tokens).label("input_tokens"),
        func.sum(ModelUsage.output_tokens).label("output_tokens"),
        func.sum(ModelUsage.cost).label("cost"),
    )
    if query.start:
        statement = statement.where(ModelUsage.day >= query.start)
    if query.end:
        statement = statement.where(ModelUsage.day <= query.end)
    if query.project:
        statement = statement.where(ModelUsage.project == query.project)
    if query.model:
        statement = statement.where(ModelUsage.model == query.model)
    if columns:
        statement = statement.group_by(*columns).order_by(*columns)
    rows = []
    for row in session.exec(statement).all():
        item = dict(row._mapping)
        item["input_tokens"] = int(item["input_tokens"] or 0)
        item["output_tokens"] = int(item["output_tokens"] or 0)
        item["cost"] = round(float(item["cost"] or 0), 8)
        rows.append(item)
    return [r for r in rows if r["model_calls"]]


def parse_day(value: str | None, name: str) -> str | None:
    """A YYYY-MM-DD day as given, or ValueError naming the parameter."""
    if value is None or value == "":
        return None
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"'{name}' must be a day as YYYY-MM-DD, not {value!r}") from None


def parse_groups(value: str | None) -> tuple[str, ...]:
    if value is None or not value.strip():
        return GROUPS
    groups = tuple(g.strip() for g in value.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"'group_by' takes {', '.join(GROUPS)}, not {', '.join(unknown)}")
    return tuple(dict.fromkeys(groups))
