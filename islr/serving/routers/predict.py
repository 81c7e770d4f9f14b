"""``POST /v1/predict`` (landmarks as JSON) and ``POST /v1/predict/video`` (an upload)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from islr.errors import InputError, VideoError
from islr.inference.engine import require_landmarks
from islr.inference.gate import is_signing
from islr.landmarks import LandmarkSequence
from islr.serving.inputs import body_landmarks, looks_like_video
from islr.serving.limits import parse_json_body, read_json_bytes
from islr.serving.schemas import PredictRequest, PredictResponse
from islr.serving.state import ServerState, server_state, too_large

router = APIRouter(tags=["predict"])
State = Annotated[ServerState, Depends(server_state)]
_MULTIPART_SLACK = 65536  # bytes of multipart framing allowed on top of the file itself
INLINE_PARSE_BYTES = 256 * 1024  # larger JSON bodies are parsed in a worker thread


class _UploadTooLarge(Exception):
    pass


async def upload_form(request: Request, state: State) -> FormData:
    """FastAPI dependency: the request's multipart form, read with the server's upload limit
    (a 413 on the declared length, or as soon as more bytes arrive than the limit allows)."""
    limit = state.config.max_upload_bytes + _MULTIPART_SLACK
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(state.config)
    received = 0
    receive = request.receive

    async def limited_receive() -> dict:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _UploadTooLarge
        return message

    timeout = state.config.video_timeout_s
    try:
        async with asyncio.timeout(timeout):
            return await Request(request.scope, limited_receive).form(max_files=1, max_fields=4)
    except _UploadTooLarge:
        raise too_large(state.config) from None
    except TimeoutError:
        raise HTTPException(408, f"the upload did not arrive within {timeout:g} s") from None
    except Exception as e:  # malformed multipart bodies raise assorted parser errors
        raise HTTPException(400, f"not a multipart/form-data upload ({e})") from None


def _now() -> float:
    return time.perf_counter()


def classify(
    state: ServerState, data: np.ndarray, image_size: tuple[int, int] | None, top_k: int
) -> dict[str, Any]:
    """Top-k signs of landmarks in the model's layout, and the model's time (worker thread)."""
    batch = state.engine.prepare(data, image_size)[None]
    require_landmarks(batch)
    extra = {"image_width": image_size[0], "image_height": image_size[1]} if image_size else {}
    signing = is_signing(LandmarkSequence(data, state.engine.layout, extra=extra))
    return _classify_prepared(state, batch, top_k) | {"signing": signing}


def _landmarks_of_body(
    state: ServerState, raw: bytes
) -> tuple[np.ndarray, tuple[int, int] | None, int, int]:
    """A ``POST /v1/predict`` body -> the model's landmarks, the image size, top_k and the
    number of frames received; 422 for anything wrong with it."""
    body = parse_json_body(PredictRequest, raw)
    max_frames = state.config.max_frames
    if len(body.frames) > max_frames:
        raise InputError(f"{len(body.frames)} frames is more than this server takes ({max_frames})")
    data, size = body_landmarks(state.engine, body)
    return data, size, body.top_k, len(body.frames)


def _predict_json(state: ServerState, raw: bytes) -> tuple[dict[str, Any], int]:
    """A large body parsed, checked and classified in one worker thread."""
    data, size, top_k, n_frames = _landmarks_of_body(state, raw)
    return classify(state, data, size, top_k), n_frames


def _classify_prepared(state: ServerState, batch: np.ndarray, top_k: int) -> dict[str, Any]:
    start = time.perf_counter()
    probs = state.engine.predict_prepared(batch)[0]
    model_ms = (time.perf_counter() - start) * 1000
    top = [{"label": label, "prob": p} for label, p in state.engine.top(probs, top_k)]
    return {"top": top, "model_ms": model_ms}


def respond(
    result: dict[str, Any], n_frames: int, started: float, extract_ms: float | None = None
) -> dict[str, Any]:
    top = result["top"]
    return {
        "label": top[0]["label"],
        "prob": top[0]["prob"],
        "top": top,
        "signing": result["signing"],
        "n_frames": n_frames,
        "timing_ms": {
            "total": (time.perf_counter() - started) * 1000,
            "model": result["model_ms"],
            "extract": extract_ms,
        },
    }


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
        }
    },
)
async def predict(request: Request, state: State) -> dict:
    """Classify one landmark sequence."""
    started = time.perf_counter()
    config = state.config
    raw = await read_json_bytes(request, config.max_json_bytes, config.request_timeout_s)
    # Parsed and validated in one pass by pydantic's JSON parser (a third faster than FastAPI's
    # json.loads + validation on 60-frame bodies). A large body is parsed in a worker thread, so
    # that it never holds up the other requests; a usual one (2 s of frames: ~80 KiB, ~1 ms)
    # here, so that a request makes one thread hop (the model), not two.
    if len(raw) > INLINE_PARSE_BYTES:
        result, n_frames = await run_in_threadpool(_predict_json, state, raw)
    else:
        data, size, top_k, n_frames = _landmarks_of_body(state, raw)
        result = await run_in_threadpool(classify, state, data, size, top_k)
    return respond(result, n_frames, started)


def _require_video_extra() -> None:
    from islr.errors import MissingExtraError
    from islr.extract.holistic import require_video

    try:
        require_video("POST /v1/predict/video (landmarks from a video on the server)", False)
    except MissingExtraError as e:
        raise HTTPException(501, str(e)) from None


@router.post(
    "/v1/predict/video",
    response_model=PredictResponse,
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
async def predict_video(
    request: Request,
    state: State,
    _video: Annotated[None, Depends(_require_video_extra)],  # before the upload is read
    started: Annotated[float, Depends(_now)],  # resolved before the upload is read
    form: Annotated[FormData, Depends(upload_form)],
) -> dict:
    """Classify an uploaded video (multipart field ``file``): MediaPipe Holistic extracts
    its landmarks on the server (slow: about real time on one core)."""
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
        if path.stat().st_size > state.config.max_upload_bytes:
            raise too_large(state.config)
        t0 = time.perf_counter()
        try:
            seq = await _extract_while_connected(request, state, path)
        except VideoError as e:
            raise HTTPException(
                422, f"{name}: {str(e).replace(str(path), '').lstrip(': ')}"
            ) from None
        extract_ms = (time.perf_counter() - t0) * 1000
    batch = state.engine.prepare(seq)[None]
    require_landmarks(batch)
    result = await run_in_threadpool(_classify_prepared, state, batch, top_k)
    return respond(result | {"signing": is_signing(seq)}, seq.n_frames, started, extract_ms)


async def _extract_while_connected(
    request: Request, state: ServerState, path: Path
) -> LandmarkSequence:
    """MediaPipe on the upload in a worker thread, within the server's video limits; stopped
    when the client disconnects or it takes longer than ``video_timeout_s``."""
    config = state.config
    stop = threading.Event()
    deadline = time.monotonic() + config.video_timeout_s
    task = asyncio.ensure_future(
        run_in_threadpool(
            _extract,
            path,
            state.engine.layout,
            config.max_video_seconds,
            config.max_frames,
            lambda: stop.is_set() or time.monotonic() > deadline,
        )
    )
    try:
        while not task.done():
            await asyncio.wait([task], timeout=0.5)
            if not task.done() and await request.is_disconnected():
                stop.set()
        return task.result()
    finally:
        stop.set()  # also when this coroutine is cancelled: the thread ends at its next frame


def _extract(
    path: Path, layout: str, max_seconds: float, max_frames: int, stop: Any
) -> LandmarkSequence:
    from islr.extract import extract_video

    return extract_video(
        path, layout=layout, max_seconds=max_seconds, max_frames=max_frames, stop=stop
    )
