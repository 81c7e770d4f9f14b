"""``GET /docs``: the API's Swagger UI, its scripts and styles served from the swagger-ui-bundle
package under ``/docs/assets/`` rather than from a CDN, so the docs work offline like the page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/docs/assets"
ASSETS_DIR = swagger_ui_path  # swagger-ui's dist folder: mounted at ASSETS_URL by the app

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - API docs",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
    )
