"""``/`` and ``/static/``: the web page (``islr/serving/static``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
VENDOR_FILES = ("vendor/holistic/holistic.js", "vendor/ort/ort.wasm.min.js")

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> Response:
    page = STATIC_DIR / "index.html"
    if page.is_file() and all((STATIC_DIR / f).is_file() for f in VENDOR_FILES):
        return FileResponse(page)
    return HTMLResponse(_missing_vendor_page())


def _missing_vendor_page() -> str:
    return """<!doctype html><html><head><meta charset="utf-8"><title>islr</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>islr server is running</h1>
<p>The web page's assets (MediaPipe Holistic and onnxruntime-web, vendored from npm) are not
built in this installation. Build them once with <code>make web</code> (needs Node.js and npm)
and reload this page.</p>
<p>The API works without them: see <a href="/docs">/docs</a>,
<a href="/v1/model">/v1/model</a>, <code>POST /v1/predict</code>, <code>WS /v1/stream</code>.</p>
</body></html>"""
