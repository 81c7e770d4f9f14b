"""The HTTP + WebSocket server: the classifier behind a small JSON API, and the web page.

Endpoints (OpenAPI docs at ``/docs``):

- ``GET /healthz``; ``GET /v1/model`` (labels, layout, seq_len... as JSON);
  ``GET /v1/model.onnx`` (the exported classifier, for the in-browser path);
- ``POST /v1/predict``: one landmark sequence as JSON -> top-k signs;
- ``POST /v1/predict/video``: an uploaded video -> MediaPipe landmarks -> top-k signs;
- ``WS /v1/stream``: landmark frames one by one -> segmentation events (one sign per sign);
- ``/`` and ``/static/``: the web page (``islr/serving/static``).

Model calls and extraction run in worker threads, so the event loop keeps serving; bad input of
any kind gets a 4xx with a message, never a crash.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from islr import __version__
from islr.errors import InputError, VideoError
from islr.features import to_layout
from islr.inference import Engine, StreamConfig, StreamSegmenter
from islr.landmarks import LandmarkSequence, LayoutError, get_layout
from islr.serving.schemas import Health, PredictRequest, PredictResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_FILES = ("vendor/holistic/holistic.js", "vendor/ort/ort.wasm.min.js")
# First bytes of the containers behind VIDEO_EXTENSIONS (mp4/mov: "ftyp" box at offset 4).
_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3", b"RIFF")  # Matroska/WebM, AVI


@dataclass
class ServeConfig:
    """Limits and settings of the server."""

    max_upload_mb: float = 50.0
    max_frames: int = 1000
    max_stream_errors: int = 100  # bad WebSocket messages answered before the socket is closed
    threads: int | None = None  # intra-op threads of the classifier
    stream: StreamConfig = field(default_factory=StreamConfig)


class _UploadTooLarge(Exception):
    pass


def looks_like_video(head: bytes) -> bool:
    """Whether the first bytes of a file are those of an MP4/MOV, WebM/MKV or AVI container."""
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return True
    return head.startswith(_VIDEO_MAGIC)


def frames_to_array(frames: list, what: str = "frames") -> np.ndarray:
    """``[T][N][C]`` lists with ``None`` for missing points -> ``(T, N, C)`` float32 with NaN."""
    n_points = len(frames[0]) if frames else 0
    first = next((p for f in frames for p in f if p is not None), None)
    n_coords = len(first) if first is not None else 3
    if not 2 <= n_coords <= 3:
        raise InputError(f"{what}: a point must have 2 or 3 coordinates, got {n_coords}")
    missing = [float("nan")] * n_coords
    try:
        data = np.array(
            [[missing if p is None else p for p in frame] for frame in frames], dtype=np.float32
        )
        absent = np.array([[p is None for p in frame] for frame in frames], dtype=bool)
    except (ValueError, TypeError):
        raise InputError(
            f"{what}: every frame must have the same number of points ({n_points}) and every "
            f"point {n_coords} coordinates or null"
        ) from None
    if data.ndim != 3 or data.shape[1] == 0:
        raise InputError(f"{what}: expected [T][N][C] with N > 0, got shape {data.shape}")
    # JSON has no NaN: a missing point is null; NaN or Infinity as a number is an error
    if not np.isfinite(data[~absent]).all():
        raise InputError(f"{what}: NaN or Infinity in the values; send null for a missing point")
    return data


def _to_model_frames(engine: Engine, data: np.ndarray, layout: str | None) -> np.ndarray:
    """Data in ``layout`` (default: the model's) -> the model's points and coordinates."""
    try:
        source = get_layout(layout or engine.model_layout)
    except LayoutError as e:
        raise InputError(str(e)) from None
    if data.shape[1] != source.n_points:
        raise InputError(
            f"layout {source.name!r} has {source.n_points} points per frame, the frames have "
            f"{data.shape[1]}"
        )
    return to_layout(data, source, engine.model_layout, engine.n_coords)


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


def create_app(
    model: str | Path, config: ServeConfig | None = None, onnx_cache: str | Path | None = None
) -> FastAPI:
    """The server app for a checkpoint (RUN_DIR / ``.pt``) or an ``.onnx`` model.

    A checkpoint is also exported to ONNX once at startup (cached under ``onnx_cache`` or the
    temp folder) so the page can run it in the browser.
    """
    from islr.inference.export import cached_onnx_bytes

    config = config or ServeConfig()
    model = Path(model)
    engine = Engine.load(model, threads=config.threads)
    onnx_bytes = (
        model.read_bytes() if engine.backend == "onnx" else cached_onnx_bytes(model, onnx_cache)
    )
    info = engine.describe()
    info.update(
        {"version": __version__, "onnx_url": "/v1/model.onnx", "onnx_bytes": len(onnx_bytes)}
    )
    max_upload = int(config.max_upload_mb * 1024 * 1024)

    app = FastAPI(
        title="islr",
        version=__version__,
        description="Indian Sign Language isolated-sign recognition: landmarks or a video in, "
        "signs out. The web page is at /.",
    )
    app.state.engine = engine
    app.state.config = config

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which may hold Infinity: not JSON
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    def classify(data: np.ndarray, image_size: tuple[int, int] | None, top_k: int) -> dict:
        batch = engine.prepare(data, image_size)[None]
        start = time.perf_counter()
        probs = engine.predict_prepared(batch)[0]
        model_ms = (time.perf_counter() - start) * 1000
        return {"top": _top_dicts(engine, probs, top_k), "model_ms": model_ms}

    def respond(result: dict, n_frames: int, started: float, extract_ms: float | None = None):
        top = result["top"]
        return {
            "label": top[0]["label"],
            "prob": top[0]["prob"],
            "top": top,
            "n_frames": n_frames,
            "timing_ms": {
                "total": (time.perf_counter() - started) * 1000,
                "model": result["model_ms"],
                "extract": extract_ms,
            },
        }

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> dict:
        return {"status": "ok", "model": engine.source, "backend": engine.backend}

    @app.get("/v1/model", tags=["model"])
    async def model_info() -> dict:
        """The model's input contract: labels, layout (name and parts), n_points, n_coords,
        seq_len, resampling rule, feature settings, version."""
        return info

    @app.get(
        "/v1/model.onnx",
        tags=["model"],
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    async def model_onnx() -> Response:
        """The classifier as ONNX (input "landmarks", output "logits", metadata key "islr")."""
        return Response(
            onnx_bytes,
            media_type="application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="model.onnx"'},
        )

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        tags=["predict"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
    )
    async def predict(request: Request) -> dict:
        """Classify one landmark sequence."""
        started = time.perf_counter()
        # Parsed and validated in one pass by pydantic's JSON parser: a third faster than
        # FastAPI's json.loads + validation on 60-frame bodies.
        try:
            body = PredictRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from None
        if len(body.frames) > config.max_frames:
            raise InputError(
                f"{len(body.frames)} frames is more than this server takes ({config.max_frames})"
            )
        if (body.image_width is None) != (body.image_height is None):
            raise InputError("give both image_width and image_height, or neither")
        data = _to_model_frames(engine, frames_to_array(body.frames), body.layout)
        size = (body.image_width, body.image_height) if body.image_width else None
        result = await run_in_threadpool(classify, data, size, body.top_k)
        return respond(result, len(body.frames), started)

    @app.post(
        "/v1/predict/video",
        response_model=PredictResponse,
        tags=["predict"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "top_k": {"type": "integer", "minimum": 1, "default": 5},
                            },
                        }
                    }
                },
            }
        },
    )
    async def predict_video(request: Request) -> dict:
        """Classify an uploaded video (multipart field ``file``): MediaPipe Holistic extracts
        its landmarks on the server (slow: about real time on one core)."""
        started = time.perf_counter()
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload + 65536:
            raise HTTPException(413, f"upload larger than {config.max_upload_mb:g} MB")
        received = 0
        receive = request.receive

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_upload + 65536:
                raise _UploadTooLarge
            return message

        try:
            form = await Request(request.scope, limited_receive).form(max_files=1, max_fields=4)
        except _UploadTooLarge:
            raise HTTPException(413, f"upload larger than {config.max_upload_mb:g} MB") from None
        except Exception as e:  # malformed multipart bodies raise assorted parser errors
            raise HTTPException(400, f"not a multipart/form-data upload ({e})") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "send the video as a multipart form field named 'file'")
        try:
            top_k = int(form.get("top_k") or 5)
        except ValueError:
            raise HTTPException(422, "top_k must be an integer") from None
        if top_k < 1:
            raise HTTPException(422, "top_k must be at least 1")
        from islr.extract import VIDEO_EXTENSIONS, is_video_file

        name = upload.filename or ""
        if not is_video_file(name):
            raise HTTPException(
                415,
                f"{name or 'the file'}: not a video file name (use {', '.join(VIDEO_EXTENSIONS)})",
            )
        head = await upload.read(16)
        if not looks_like_video(head):
            raise HTTPException(415, f"{name}: the content is not a video container")
        await upload.seek(0)
        with tempfile.TemporaryDirectory(prefix="islr-upload-") as tmp:
            path = Path(tmp) / ("upload" + Path(name).suffix.lower())
            with path.open("wb") as f:
                while chunk := await upload.read(1 << 20):
                    f.write(chunk)
            if path.stat().st_size > max_upload:
                raise HTTPException(413, f"upload larger than {config.max_upload_mb:g} MB")
            t0 = time.perf_counter()
            try:
                seq = await run_in_threadpool(_extract, path, engine.layout)
            except VideoError as e:
                raise HTTPException(
                    422, f"{name}: {str(e).replace(str(path), '').lstrip(': ')}"
                ) from None
            extract_ms = (time.perf_counter() - t0) * 1000
        data = engine.prepare(seq)
        t1 = time.perf_counter()
        probs = await run_in_threadpool(engine.predict_prepared, data[None])
        result = {
            "top": _top_dicts(engine, probs[0], top_k),
            "model_ms": (time.perf_counter() - t1) * 1000,
        }
        return respond(result, seq.n_frames, started, extract_ms)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        """Landmark frames in, segmentation events out (see islr.inference.streaming)."""
        await ws.accept()

        def classify_frames(frames: np.ndarray) -> np.ndarray:
            return engine.predict_batch([frames])[0]

        segmenter = StreamSegmenter(
            engine.model_layout, engine.labels, classify_frames, config.stream
        )
        errors = 0
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                events = await _stream_step(engine, segmenter, message.get("text"))
            except InputError as e:
                errors += 1
                await ws.send_json({"type": "error", "message": str(e)})
                if errors >= config.max_stream_errors:
                    await ws.close(code=1008, reason="too many bad messages")
                    return
                continue
            for event in events:
                await ws.send_json(event)

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = STATIC_DIR / "index.html"
        if page.is_file() and all((STATIC_DIR / f).is_file() for f in VENDOR_FILES):
            return FileResponse(page)
        return HTMLResponse(_missing_vendor_page())

    return app


def _extract(path: Path, layout: str) -> LandmarkSequence:
    from islr.extract import extract_video

    return extract_video(path, layout=layout)


async def _stream_step(
    engine: Engine, segmenter: StreamSegmenter, text: str | None
) -> list[dict[str, Any]]:
    """One WebSocket message -> the segmenter's events; InputError for a bad message."""
    if text is None:
        raise InputError('send JSON text messages like {"frame": [[x, y, z] or null, ...]}')
    try:
        message = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON ({e.msg})") from None
    if not isinstance(message, dict):
        raise InputError('a message must be a JSON object like {"frame": [...]}')
    if message.get("reset"):
        segmenter.reset()
        return [{"type": "reset"}]
    if message.get("flush"):
        return await run_in_threadpool(segmenter.flush)
    frame = message.get("frame")
    if not isinstance(frame, list) or not frame:
        raise InputError('expected {"frame": [[x, y, z] or null per point]} or {"reset": true}')
    if not all(p is None or (isinstance(p, list) and _numbers(p)) for p in frame):
        raise InputError("frame: each point must be a list of 2 or 3 numbers, or null")
    layout = message.get("layout")
    if layout is not None and not isinstance(layout, str):
        raise InputError("layout must be a layout name")
    data = _to_model_frames(engine, frames_to_array([frame], "frame"), layout)[0]
    t = message.get("t")
    if t is not None and (not _numbers([t]) or not np.isfinite(t)):
        raise InputError("t must be a number of seconds")
    return await run_in_threadpool(segmenter.push, data, t)


def _top_dicts(engine: Engine, probs: np.ndarray, top_k: int) -> list[dict[str, Any]]:
    return [{"label": label, "prob": prob} for label, prob in engine.top(probs, top_k)]


def _numbers(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
