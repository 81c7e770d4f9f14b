"""``/`` and ``/static/``: the web page (``islr/serving/static``)."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# What web/build.sh vendors from npm (git-ignored; a wheel built after `make web` carries them).
VENDOR_FILES = tuple(
    f"vendor/{name}"
    for name in (
        "holistic/holistic.js",
        "holistic/holistic.binarypb",
        "holistic/holistic_solution_packed_assets_loader.js",
        "holistic/holistic_solution_packed_assets.data",
        "holistic/holistic_solution_simd_wasm_bin.js",
        "holistic/holistic_solution_simd_wasm_bin.wasm",
        "holistic/pose_landmark_full.tflite",
        "ort/ort.wasm.min.js",
        "ort/ort-wasm-simd-threaded.mjs",
        "ort/ort-wasm-simd-threaded.wasm",
    )
)
WEB_ASSETS_HELP = (
    "in a source checkout run `make web` once (needs Node.js and npm; `islr serve` never does), "
    "or install islr from a wheel built with `make wheel`, which carries them"
)

router = APIRouter()


TOKEN_META = '<meta name="islr-write-token" content="{token}">'


@router.get("/", include_in_schema=False)
async def index(request: Request) -> Response:
    missing = missing_web_assets()
    if missing:
        return HTMLResponse(_missing_vendor_page(missing))
    # The write token goes into the page itself: a page of another origin cannot read it.
    token = html.escape(request.app.state.islr.write_token)
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace("<head>", "<head>\n  " + TOKEN_META.format(token=token), 1)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def missing_web_assets() -> list[str]:
    """The page's vendored files absent from this installation (``static/...`` paths)."""
    return [f for f in ("index.html", *VENDOR_FILES) if not (STATIC_DIR / f).is_file()]


def _missing_vendor_page(missing: list[str]) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>islr</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>islr server is running</h1>
<p>The web page's assets (MediaPipe Holistic and onnxruntime-web, vendored from npm) are not
in this installation ({len(missing)} files missing, e.g. <code>{html.escape(missing[0])}</code>
under <code>{html.escape(str(STATIC_DIR))}</code>). To get them, {html.escape(WEB_ASSETS_HELP)};
then reload this page.</p>
<p>The API works without them: see <a href="/docs">/docs</a>,
<a href="/v1/model">/v1/model</a>, <code>POST /v1/predict</code>, <code>WS /v1/stream</code>.</p>
</body></html>"""
