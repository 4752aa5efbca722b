"""`/docs`: Swagger UI from assets bundled in a Python package (swagger-ui-bundle), so the
page works air-gapped; FastAPI's own `/docs` loads them from a CDN. When API keys are
configured the page needs one: a Bearer key, or the key as the password of HTTP Basic
auth (the browser asks for it). ASSISTD_DOCS=off removes the page. `/openapi.json`
itself stays open: it describes the public API and holds no data.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

from server.api_keys import KeyCache
from server.deps import AppSettings
from server.errors import APIError

router = APIRouter(include_in_schema=False)
ASSETS = Path(str(swagger_ui_path))
FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}


def _key(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or decoded.partition(":")[0] or None
    return None


async def _allowed(request: Request) -> bool:
    cache: KeyCache = request.app.state.key_cache  # built in the app's lifespan
    if not await cache.auth_required():
        return True
    key = _key(request)
    return key is not None and await cache.project_for(key) is not None


@router.get("/docs")
async def docs(request: Request, settings: AppSettings) -> Response:
    if not settings.docs_enabled:
        raise HTTPException(404)
    if not await _allowed(request):
        error = APIError(
            401,
            "/docs needs an API key: give it as the password, or as a Bearer key.",
            code="invalid_api_key",
        )
        return Response(
            content=json.dumps(error.body()),
            status_code=401,
            media_type="application/json",
            headers={"WWW-Authenticate": 'Basic realm="assistd", charset="UTF-8"'},
        )
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="assistd API",
        swagger_js_url="/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/docs/static/swagger-ui.css",
        swagger_favicon_url="/docs/static/favicon-32x32.png",
    )
    return HTMLResponse(page.body, headers={"Cache-Control": "no-store"})


@router.get("/docs/static/{name}")
async def docs_asset(name: str, settings: AppSettings) -> FileResponse:
    if not settings.docs_enabled or name not in FILES:
        raise HTTPException(404)
    return FileResponse(ASSETS / name, headers={"Cache-Control": "max-age=86400"})
