"""Serves the inspector page, /inspector/: static files shipped inside the package
(server/inspector/static), read once at start-up. The page holds no data: it calls the
JSON API with the key the user typed, so it needs no authentication of its own.

Every answer carries a Content-Security-Policy that allows nothing but this server's
own scripts, styles, images and API (plus blob: images, which the page makes from
downloaded files): no CDN, no inline script, no third-party request, and a second line
of defence should user text ever reach the DOM as markup.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from server.errors import not_found

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file under static/ by its path there, with its content type."""
    assets: dict[str, tuple[bytes, str]] = {}
    root = resources.files("server.inspector").joinpath("static")

    def walk(node: resources.abc.Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
                continue
            suffix = "." + child.name.rsplit(".", 1)[-1]
            if suffix in TYPES:
                assets[name] = (child.read_bytes(), TYPES[suffix])

    walk(root, "")
    return assets


ASSETS = load_assets()
router = APIRouter(include_in_schema=False)


@router.get("/inspector")
def inspector_redirect() -> RedirectResponse:
    return RedirectResponse("/inspector/", status_code=308)


@router.get("/inspector/{path:path}")
def inspector_asset(path: str) -> Response:
    """The page (index.html at /inspector/; its views are #fragments) and its assets.
    Only files shipped in static/ are served: the path is a key into that table, never
    a filesystem path."""
    asset = ASSETS.get(path or "index.html")
    if asset is None:
        raise not_found("inspector asset", path)
    body, media_type = asset
    return Response(body, media_type=media_type, headers=HEADERS)
