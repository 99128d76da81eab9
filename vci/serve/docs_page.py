"""``GET /docs``: Swagger UI over ``/openapi.json``, with "try it", from the server itself (no CDN).

The page's script and style come from the PyPI package ``swagger-ui-py`` (pinned in pyproject.toml;
Swagger UI 5, which renders OpenAPI 3.1): found where it is installed, never imported (its Python side
wants jinja2), and in an image from the runtime layer, which holds just the files below (vci.build.plan)
as ``swagger_ui/static/`` on the server's path. Every URL on the page is relative, so it works behind
a path prefix too.
"""

from __future__ import annotations

import html
import importlib.util
from functools import cache
from pathlib import Path

from . import openapi
from .service import Reply, error_reply

PACKAGE = "swagger_ui"  # the import name of swagger-ui-py
ASSETS = {  # served at /docs/NAME: the files an image carries (with the licence)
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
}
ROUTES = ("/docs", "/openapi.json", *(f"/docs/{name}" for name in ASSETS))
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui", tryItOutEnabled: true,
  deepLinking: true, presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"}});
</script></body></html>
"""


def static_dir() -> Path | None:
    """Where the Swagger UI files are (the package's ``static/``), or None when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without running its __init__
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "static" / "swagger-ui-bundle.js").is_file():
            return Path(location) / "static"
    return None


def asset_files() -> list[tuple[str, Path]]:
    """``(name, file)`` of each asset an image needs; empty when the package is not installed here."""
    found = static_dir()
    return [(name, found / name) for name in ASSETS if (found / name).is_file()] if found else []


@cache
def asset(name: str) -> bytes | None:
    """The bytes of ``/docs/NAME`` (read once), or None when the package is not installed."""
    found = static_dir()
    return (found / name).read_bytes() if found and name in ASSETS and (found / name).is_file() else None


def page(title: str) -> bytes:
    return PAGE.format(title=html.escape(title)).encode()


def reply(service, path: str, request_id: str, *, bearer: bool = False) -> Reply:
    """Answer ``/openapi.json``, ``/docs`` or one of its assets for ``service``'s model (``bearer``: the
    prediction routes need a token, which the document declares, so the page's "Authorize" asks for it)."""
    if path == "/openapi.json":
        if service.openapi is None or service.openapi[0] is not service.manifest:  # rendered once per model
            service.openapi = (service.manifest, openapi.render(service.manifest, service.metadata(), bearer))
        return Reply(200, service.openapi[1])
    if path == "/docs":
        return Reply(200, page(f"{service.metadata().get('project') or 'model'} - vci"), "text/html; charset=utf-8")
    name = path.removeprefix("/docs/")
    body = asset(name)
    if body is None:
        return error_reply(
            404, f"{path}: the Swagger UI files are not installed here (pip install swagger-ui-py)", request_id
        )
    return Reply(200, body, ASSETS[name])
