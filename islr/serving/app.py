"""The HTTP + WebSocket server: the classifier behind a small JSON API, and the web page.

Endpoints (OpenAPI docs at ``/docs``), one router each (:mod:`islr.serving.routers`):

- ``model``: ``GET /healthz``; ``GET /v1/model`` (labels, layout, seq_len, the segmenter's
  settings ``stream``... as JSON);
  ``GET /v1/model.onnx`` (the exported classifier, for the in-browser path);
- ``predict``: ``POST /v1/predict``: one landmark sequence as JSON -> top-k signs;
  ``POST /v1/predict/video``: an uploaded video -> MediaPipe landmarks -> top-k signs;
- ``stream``: ``WS /v1/stream``: raw MediaPipe frames one by one -> segmentation events (the
  message contract is in :mod:`islr.serving.routers.stream`);
- ``vocabulary``: ``/v1/vocabulary``: the signs added to the model from a few takes (list,
  check, add with ``islr serve --allow-enroll``, rename, remove);
- ``page``: ``/`` and ``/static/``: the web page (``islr/serving/static``);
- ``docs``: ``/docs``: the API's Swagger UI, with its assets from a package (offline too).

The routers share one :class:`~islr.serving.state.ServerState` (``app.state.islr``). Model calls,
JSON parsing and extraction run in worker threads, so the event loop keeps serving; bad input of
any kind gets a 4xx with a message, never a crash; bodies, messages and videos have limits
(:mod:`islr.serving.limits`). Only the server's own page (or a client that is no web page) may
write and stream, and writes need the process's write token (:mod:`islr.serving.guard`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from islr import __version__
from islr.errors import InputError
from islr.inference import Engine
from islr.serving import routers
from islr.serving.guard import OriginGuard, OriginPolicy, new_write_token
from islr.serving.inputs import frames_to_array, looks_like_video
from islr.serving.limits import log_disconnect
from islr.serving.routers.page import (
    STATIC_DIR,
    VENDOR_FILES,
    WEB_ASSETS_HELP,
    missing_web_assets,
)
from islr.serving.state import ServeConfig, ServerState
from islr.vocabulary import vocabulary_path

__all__ = [
    "STATIC_DIR",
    "VENDOR_FILES",
    "WEB_ASSETS_HELP",
    "ServeConfig",
    "ServerState",
    "create_app",
    "frames_to_array",
    "looks_like_video",
    "missing_web_assets",
]


def create_app(
    model: str | Path, config: ServeConfig | None = None, onnx_cache: str | Path | None = None
) -> FastAPI:
    """The server app for a shipped model's name, a checkpoint (RUN_DIR / ``.pt``) or an
    ``.onnx`` model.

    A checkpoint is also exported to ONNX once at startup (cached under ``onnx_cache`` or the
    temp folder) so the page can run it in the browser.
    """
    from islr.export import cached_onnx_bytes
    from islr.pretrained import resolve_model

    config = config or ServeConfig()
    vocabulary_file = config.vocabulary or vocabulary_path(model)
    model = resolve_model(model)  # a shipped model's name -> its .onnx file
    engine = Engine.load(model, threads=config.threads, vocabulary=False)
    if engine.embedding_dim is not None:
        engine.use_vocabulary_file(vocabulary_file)
    onnx_bytes = (
        model.read_bytes() if engine.backend == "onnx" else cached_onnx_bytes(model, onnx_cache)
    )
    stream = config.stream_config(engine)
    info = {
        **engine.describe(),
        "stream": stream.to_dict(),  # what WS /v1/stream uses; the page segments with it too
        "stream_source": "server" if config.stream or config.stream_overrides else "model",
        "version": __version__,
        "onnx_url": "/v1/model.onnx",
        "onnx_bytes": len(onnx_bytes),
        # the learned segmenter the page runs beside the classifier (None: the heuristic)
        "segmenter": segmenter_info(engine),
    }
    app = FastAPI(
        title="islr",
        version=__version__,
        description="Indian Sign Language isolated-sign recognition: landmarks or a video in, "
        "signs out. The web page is at /.\n\n"
        "## WebSocket `/v1/stream` (not listed below: OpenAPI has no WebSockets)\n\n"
        + routers.stream.CONTRACT,
        docs_url=None,  # routers.docs serves it without a CDN
        redoc_url=None,  # ReDoc loads from a CDN only
    )
    token = config.token or new_write_token()
    app.state.islr = ServerState(engine, config, onnx_bytes, info, stream, token)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_middleware(OriginGuard, policy=OriginPolicy(config.allow_origins, config.allow_hosts))
    for module in (
        routers.model,
        routers.predict,
        routers.stream,
        routers.vocabulary,
        routers.page,
        routers.docs,
    ):
        app.include_router(module.router)
    app.mount(routers.docs.ASSETS_URL, StaticFiles(directory=routers.docs.ASSETS_DIR), name="docs")
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def segmenter_info(engine: Engine) -> dict | None:
    """What the page needs to run the engine's learned segmenter, or None without one."""
    seg = engine.segmenter
    if seg is None:
        return None
    return {
        "url": "/v1/segmenter.onnx",
        "bytes": len(seg.model_bytes),
        "layout": seg.layout.to_dict(),
        "n_coords": seg.n_coords,
        "window": seg.window,
        "lookahead": seg.lookahead,
        "input": seg.metadata.get("input", "landmarks"),
        "output": seg.metadata.get("output", "tags"),
    }


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's default echoes the offending input, which may hold Infinity: not JSON
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _input_error(request: Request, exc: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _client_disconnect(request: Request, exc: ClientDisconnect) -> Response:
    log_disconnect(request, exc)
    return Response(status_code=400)  # nobody reads it
