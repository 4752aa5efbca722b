"""Operator endpoints outside /v1: `/metrics` (Prometheus) and `/admin/usage`.

`/metrics` answers loopback callers without a key unless ASSISTD_METRICS_KEY is set
(then that bearer key, from anywhere); callers elsewhere need the key. With
ASSISTD_METRICS_PORT the metrics move to their own port and this route answers 404.
`/admin/usage` needs ASSISTD_ADMIN_KEY: project keys never see other projects' usage.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from server.config import Settings
from server.deps import DB, AppSettings
from server.errors import APIError, bad_request
from server.observability import metrics, usage

router = APIRouter(tags=["operations"])


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/metrics", include_in_schema=False)
async def metrics_page(request: Request, settings: AppSettings) -> Response:
    if not settings.metrics_enabled or settings.metrics_port is not None:
        raise HTTPException(404)
    if settings.metrics_key:
        if not hmac.compare_digest(bearer(request) or "", settings.metrics_key):
            raise APIError(401, "/metrics needs the key in ASSISTD_METRICS_KEY as a Bearer key.")
    elif not is_loopback(request.client.host if request.client else None):
        raise APIError(
            403,
            "/metrics answers loopback callers only: set ASSISTD_METRICS_KEY (and scrape "
            "with it) or ASSISTD_METRICS_PORT to serve it to others.",
        )
    body = await run_in_threadpool(generate_latest, metrics.REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def require_admin(request: Request, settings: Settings) -> None:
    if not settings.admin_key:
        raise APIError(
            403, "Admin endpoints are off: set ASSISTD_ADMIN_KEY and send it as a Bearer key."
        )
    if not hmac.compare_digest(bearer(request) or "", settings.admin_key):
        raise APIError(
            401, "Admin endpoints need the key in ASSISTD_ADMIN_KEY.", code="invalid_api_key"
        )


@router.get("/admin/usage")
def admin_usage(
    request: Request,
    settings: AppSettings,
    db: DB,
    start: Annotated[str | None, Query(description="first UTC day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, Query(description="last UTC day, YYYY-MM-DD")] = None,
    project: str | None = None,
    model: str | None = None,
    group_by: Annotated[str | None, Query(description="day,project,model")] = None,
) -> dict[str, Any]:
    """Token usage and cost summed per day, project and model (or the chosen groups)."""
    require_admin(request, settings)
    try:
        query = usage.UsageQuery(
            start=usage.parse_day(start, "start"),
            end=usage.parse_day(end, "end"),
            project=project,
            model=model,
            group_by=usage.parse_groups(group_by),
        )
    except ValueError as exc:
        raise bad_request(str(exc), param="group_by" if "group_by" in str(exc) else None) from exc
    rows = usage.summarise(db, query)
    total = {
        key: sum(row[key] for row in rows)
        for key in ("model_calls", "input_tokens", "output_tokens", "cost")
    }
    total["cost"] = round(total["cost"], 8)
    return {"object": "list", "data": rows, "total": total, "currency": "USD"}
