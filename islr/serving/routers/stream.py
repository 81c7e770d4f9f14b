"""``WS /v1/stream``: raw MediaPipe frames one by one -> segmentation events (one per sign).

FastAPI does not document WebSockets in ``/docs``; this is the contract (also in README).

Client -> server, one JSON text message each:

- ``{"start": {"layout": NAME, "image_width": W, "image_height": H}}`` (optional): a new stream
  (the segmenter is reset) whose frames share this layout and image size. ``"aspect_corrected":
  true`` instead of the size declares frames whose y is already in units of image width.
  ``"threshold": 0.8`` (optional, 0 to 1) sets this stream's threshold: a segment whose
  probability is under it is ``unknown``. Higher is stricter: fewer signs outside the
  vocabulary are named, and more of its own signs come out as ``unknown``. Without it, the
  server's threshold.
- ``{"frame": [[x, y, z] or null, ...], "t": seconds, "layout": NAME, "image_width": W,
  "image_height": H}``: one frame as MediaPipe gives it (normalised x, y; z), null for a point
  not detected, in ``layout`` (default: the start message's, else the model's). The server
  applies the aspect correction of ``POST /v1/predict`` (y x H / W). The size (or
  ``"aspect_corrected": true``) may come with each frame or once in ``start``; a frame with
  neither is refused with an error event, because raw coordinates without the size would reach
  the model distorted. ``t`` (optional, seconds): the frame's time; without it frames are
  1 / ``stream.fps`` apart.
- ``{"flush": true}``: the stream ended: the open segment is reported, then ``{"type": "flushed"}``.
- ``{"reset": true}``: drop the open segment and restart the clock: ``{"type": "reset"}``.

Server -> client events (:mod:`islr.streaming`):

- ``{"type": "partial", "top": [{"label", "prob"}...]}``: the sign being made, so far;
- ``{"type": "sign", "label", "prob", "start", "end", "top"}``: one per sign;
- ``{"type": "unknown", "start", "end", "top"}``: a segment that is not a known sign (best
  probability under the threshold); ``top``: the best guesses;
- ``{"type": "rest"}``: the signer entered rest (hands down or still);
- ``{"type": "started", "layout", "image_width", "image_height", "aspect_corrected",
  "threshold"}``,
  ``{"type": "flushed"}``, ``{"type": "reset"}``: answers to those messages;
- ``{"type": "error", "message"}``: a bad message, which is skipped; after
  ``max_stream_errors`` of them the socket closes (code 1008).

The segmenter's settings (threshold, times...) are the model's, as served in ``GET /v1/model``
(``"stream"``), possibly overridden by the server (``islr serve --threshold``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from islr.errors import InputError
from islr.features.model_input import aspect_correct
from islr.inference import Engine
from islr.landmarks import LayoutError, get_layout
from islr.serving.inputs import frames_to_array, to_model_frames
from islr.serving.state import ServerState
from islr.streaming import StreamConfig, StreamSegmenter

router = APIRouter()
# The contract above, for /docs (the app's description): the docstring from its second paragraph.
CONTRACT = (__doc__ or "").split("\n\n", 2)[2]

NO_SIZE = (
    "raw MediaPipe coordinates need the image size for the aspect correction: send "
    '"image_width" and "image_height" (pixels) with the frame or once in {"start": {...}}, or '
    'declare "aspect_corrected": true if y is already in units of image width'
)


@dataclass
class _Session:
    """What a start message set for the frames that follow."""

    layout: str | None = None
    size: tuple[float, float] | None = None
    aspect_corrected: bool = False


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Raw MediaPipe frames in, segmentation events out (the contract: this module's docstring)."""
    state: ServerState = ws.app.state.islr
    engine, config = state.engine, state.config
    await ws.accept()

    def classify_frames(frames: np.ndarray) -> np.ndarray:
        # the labels with the probabilities: signs added meanwhile are scored at once
        probs, labels = engine.classify_prepared(engine.prepare(frames)[None])
        segmenter.labels = labels
        return probs[0]

    segmenter = StreamSegmenter(
        engine.model_layout, engine.labels, classify_frames, state.stream, engine.segmenter,
        n_known=len(engine.known_labels),
    )  # fmt: skip
    session = _Session()
    errors = 0
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        try:
            events = await _stream_step(
                engine, segmenter, session, message.get("text"), state.stream
            )
        except InputError as e:
            errors += 1
            await ws.send_json({"type": "error", "message": str(e)})
            if errors >= config.max_stream_errors:
                await ws.close(code=1008, reason="too many bad messages")
                return
            continue
        for event in events:
            await ws.send_json(event)


async def _stream_step(
    engine: Engine,
    segmenter: StreamSegmenter,
    session: _Session,
    text: str | None,
    served: StreamConfig,
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
        return [*await run_in_threadpool(segmenter.flush), {"type": "flushed"}]
    if "start" in message:
        return [_start(engine, segmenter, session, message["start"], served)]
    frame = message.get("frame")
    if not isinstance(frame, list) or not frame:
        raise InputError(
            'expected {"frame": [[x, y, z] or null per point], "image_width": W, '
            '"image_height": H}, {"start": {...}}, {"flush": true} or {"reset": true}'
        )
    if not all(p is None or (isinstance(p, list) and _numbers(p)) for p in frame):
        raise InputError("frame: each point must be a list of 2 or 3 numbers, or null")
    layout = _layout(message.get("layout")) or session.layout
    data = to_model_frames(engine, frames_to_array([frame], "frame"), layout)
    t = message.get("t")
    if t is not None and (not _numbers([t]) or not np.isfinite(t)):
        raise InputError("t must be a number of seconds")
    size, corrected = _size(message)
    if size is None and not corrected:
        size, corrected = session.size, session.aspect_corrected
    if size is None and not corrected:
        raise InputError(NO_SIZE)
    if size is not None:
        data = aspect_correct(data, *size)
    return await run_in_threadpool(segmenter.push, data[0], t)


def _start(
    engine: Engine,
    segmenter: StreamSegmenter,
    session: _Session,
    start: Any,
    served: StreamConfig,
) -> dict[str, Any]:
    if not isinstance(start, dict):
        raise InputError(
            'start must be an object like {"layout": NAME, "image_width": W, "image_height": H}'
        )
    layout = _layout(start.get("layout"))
    if layout is not None:
        try:
            get_layout(layout)
        except LayoutError as e:
            raise InputError(str(e)) from None
    size, corrected = _size(start)
    threshold = start.get("threshold", served.threshold)
    if not _numbers([threshold]) or not 0 <= threshold <= 1:
        raise InputError("threshold must be a number from 0 to 1")
    session.layout, session.size, session.aspect_corrected = layout, size, corrected
    segmenter.config = replace(segmenter.config, threshold=float(threshold))
    segmenter.reset()
    return {
        "type": "started",
        "layout": layout or engine.layout,
        "image_width": size[0] if size else None,
        "image_height": size[1] if size else None,
        "aspect_corrected": corrected,
        "threshold": segmenter.config.threshold,
    }


def _layout(layout: Any) -> str | None:
    if layout is not None and not isinstance(layout, str):
        raise InputError("layout must be a layout name")
    return layout


def _size(message: dict[str, Any]) -> tuple[tuple[float, float] | None, bool]:
    """The message's image size and aspect_corrected flag, checked."""
    width, height = message.get("image_width"), message.get("image_height")
    corrected = message.get("aspect_corrected", False)
    if not isinstance(corrected, bool):
        raise InputError("aspect_corrected must be true or false")
    if width is None and height is None:
        return None, corrected
    if width is None or height is None:
        raise InputError("give both image_width and image_height, or neither")
    if not _numbers([width, height]) or not (0 < width < 1e6 and 0 < height < 1e6):
        raise InputError("image_width and image_height must be positive numbers of pixels")
    if corrected:
        raise InputError(
            "give the image size (raw MediaPipe coordinates) or aspect_corrected: true, not both"
        )
    return (float(width), float(height)), False


def _numbers(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
