"""Liveness and readiness probes (outside /v1, no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.db import schema_is_current
from server.deps import CatalogDep
from server.routers.json_route import JSONRoute

router = APIRouter(tags=["health"], route_class=JSONRoute)


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
def ready(request: Request, catalog: CatalogDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        current = schema_is_current(request.app.state.engine)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current else "pending"
    except Exception as exc:  # the probe reports, it does not crash
        checks["database"] = f"error: {exc.__class__.__name__}"
    ok = all(value == "ok" for value in checks.values())
    # Optional features are reported, not required: the API works without them.
    features = {
        "code_interpreter": request.app.state.sandbox_status,
        "models": catalog.status(),
    }
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks, "features": features},
        200 if ok else 503,
    )
