"""The API documentation pages, served from files that ship with the package.

``/schema`` and ``/schema/swagger`` show Swagger UI on ``/schema/openapi.json``.
Its scripts and styles come from the ``swagger-ui-py`` distribution (the
``service`` extra pins its version, so the assets are fixed by the installed
package), the start-up script from ``service/static/docs``; nothing is
fetched from another site, so the pages work offline and run under a
Content-Security-Policy that allows this origin only
(:data:`nangluc.service.edge.DOCS_CONTENT_SECURITY_POLICY`). The CDN-based
Redoc, RapiDoc, Elements and Scalar pages that Litestar offers are not served.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

#: Files of Swagger UI the page loads (from the swagger-ui-py distribution).
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
ASSETS_PATH = "/assets"
INIT_DIR = Path(__file__).resolve().parent / "static" / "docs"


def swagger_ui_dir() -> Path:
    """Folder of Swagger UI's files in the installed ``swagger-ui-py`` (not imported).

    Raises
    ------
    RuntimeError
        If ``swagger-ui-py`` is not installed (it comes with ``nangluc[service]``).
    """
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the API documentation needs swagger-ui-py; install it with: pip install 'nangluc[service]'"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    missing = [name for name in SWAGGER_ASSETS if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"swagger-ui-py is incomplete: {', '.join(missing)} missing in {folder}")
    return folder


class OfflineSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI from local assets, started by a script file (no inline script)."""

    def __init__(self, path: str = "/swagger", **kwargs: Any) -> None:
        super().__init__(path=path, favicon="", **kwargs)
        self.assets = swagger_ui_dir()

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        openapi_route = self.get_openapi_json_route(request)  # /schema/openapi.json
        base = openapi_route.rsplit("/", 1)[0] + ASSETS_PATH
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        openapi_url = html.escape(openapi_route, quote=True)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title} API</title>"
            f'<link rel="stylesheet" href="{base}/swagger-ui.css">'
            f'<script src="{base}/swagger-ui-bundle.js" defer></script>'
            f'<script src="{base}/swagger-ui-standalone-preset.js" defer></script>'
            f'<script src="{base}/swagger-init.js" defer></script>'
            f'</head><body><div id="swagger-ui" data-openapi="{openapi_url}"></div></body></html>'
        ).encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=ASSETS_PATH,
                directories=[INIT_DIR, self.assets],
                name="docs-assets",
                include_in_schema=False,
                cache_control=CacheControlHeader(max_age=3600),
            )
        )
