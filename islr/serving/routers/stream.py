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
  1 / ``stream.fps`` apart. Times must increase from frame to frame (by at least the server's
  ``min_frame_interval_s``, 1/240 s); a frame that does not is skipped with an error event
  that does not count towards ``max_stream_errors`` (``reset``, ``start`` and ``flush`` restart
  the clock).
- ``{"flush": true}``: the stream ended: the open segment is reported, then ``{"type": "flushed"}``;
  the next frame starts a new stream (and clock).
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
- ``{"type": "error", "message"}``: a bad message (not JSON, too large or too deeply nested,
  a wrong type, a number out of range...), which is skipped; after ``max_stream_errors`` of them
  the socket closes (code 1008). A socket with no message for ``stream_idle_s`` is closed (1001).

A segment whose frames have no landmark at all (nobody in view) is ``unknown``, never a sign.

The segmenter's settings (threshold, times...) are the model's, as served in ``GET /v1/model``
(``"stream"``), possibly overridden by the server (``islr serve --threshold``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic_core import from_json
from starlette.concurrency import run_in_threadpool

from islr.errors import InputError
from islr.features.model_input import aspect_correct
from islr.inference import Engine
from islr.landmarks import LayoutError, get_layout
from islr.serving.inputs import frames_to_array, to_model_frames
from islr.serving.schemas import MAX_IMAGE_SIDE
from islr.serving.state import ServeConfig, ServerState
from islr.streaming import StreamConfig, StreamSegmenter

log = logging.getLogger("islr.serving")
router = APIRouter()
# The contract above, for /docs (the app's description): the docstring from its second paragraph.
CONTRACT = (__doc__ or "").split("\n\n", 2)[2]

NO_SIZE = (
    "raw MediaPipe coordinates need the image size for the aspect correction: send "
    '"image_width" and "image_height" (pixels) with the frame or once in {"start": {...}}, or '
    'declare "aspect_corrected": true if y is already in units of image width'
)


class FrameOutOfOrder(InputError):
    """A frame whose time does not come after the previous frame's: skipped, not buffered."""


@dataclass
class _Session:
    """What a start message set for the frames that follow."""

    layout: str | None = None
    size: tuple[float, float] | None = None
    aspect_corrected: bool = False
    last_t: float | None = None  # the previous frame's time (frames must come in time order)


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Raw MediaPipe frames in, segmentation events out (the contract: this module's docstring)."""
    state: ServerState = ws.app.state.islr
    engine, config = state.engine, state.config
    await ws.accept()

    def classify_frames(frames: np.ndarray) -> np.ndarray:
        # the labels with the probabilities: signs added meanwhile are scored at once
        batch = engine.prepare(frames)[None]
        probs, labels = engine.classify_prepared(batch)
        segmenter.labels = labels
        if np.isnan(batch).all():  # nobody in view: no sign (probability 0 -> "unknown")
            return np.zeros_like(probs[0])
        return probs[0]

    segmenter = StreamSegmenter(
        engine.model_layout, engine.labels, classify_frames, state.stream, engine.segmenter,
        n_known=len(engine.known_labels),
    )  # fmt: skip
    session = _Session()
    with contextlib.suppress(WebSocketDisconnect):  # the client went away mid-answer
        await _serve_stream(ws, engine, config, segmenter, session, state.stream)
    client = ws.client
    log.info("stream from %s closed", f"{client.host}:{client.port}" if client else "a client")


async def _serve_stream(
    ws: WebSocket,
    engine: Engine,
    config: ServeConfig,
    segmenter: StreamSegmenter,
    session: _Session,
    served: StreamConfig,
) -> None:
    errors = 0
    while True:
        try:
            message = await asyncio.wait_for(ws.receive(), config.stream_idle_s)
        except TimeoutError:
            await ws.close(code=1001, reason=f"no message for {config.stream_idle_s:g} s")
            return
        if message["type"] == "websocket.disconnect":
            return
        try:
            text = message.get("text")
            if text is not None and len(text) > config.max_stream_message_bytes:
                raise InputError(
                    f"a message of {len(text):,} characters is larger than this server takes "
                    f"({config.max_stream_message_bytes:,})"
                )
            events = await _stream_step(engine, segmenter, session, text, served, config)
        except InputError as e:
            # a frame out of time order is skipped, but is no malformed message
            errors += not isinstance(e, FrameOutOfOrder)
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
    config: ServeConfig,
) -> list[dict[str, Any]]:
    """One WebSocket message -> the segmenter's events; InputError for a bad message."""
    if text is None:
        raise InputError('send JSON text messages like {"frame": [[x, y, z] or null, ...]}')
    try:
        # jiter: refuses nesting deeper than a few hundred levels and numbers out of range
        message = from_json(text)
    except ValueError as e:
        raise InputError(f"not JSON ({e})") from None
    if not isinstance(message, dict):
        raise InputError('a message must be a JSON object like {"frame": [...]}')
    if message.get("reset"):
        segmenter.reset()
        session.last_t = None
        return [{"type": "reset"}]
    if message.get("flush"):
        events = await run_in_threadpool(segmenter.flush)
        segmenter.reset()  # the stream ended: the next frame starts a new one, its clock too
        session.last_t = None
        return [*events, {"type": "flushed"}]
    if "start" in message:
        return [_start(engine, segmenter, session, message["start"], served)]
    frame = message.get("frame")
    if not isinstance(frame, list) or not frame:
        raise InputError(
            'expected {"frame": [[x, y, z] or null per point], "image_width": W, '
            '"image_height": H}, {"start": {...}}, {"flush": true} or {"reset": true}'
        )
    t = message.get("t")
    if t is not None and not _numbers([t]):
        raise InputError("t must be a number of seconds")
    # the time the segmenter gives a frame without one
    t = float(t) if t is not None else segmenter.n_frames / segmenter.config.fps
    if session.last_t is not None and t < session.last_t + config.min_frame_interval_s:
        raise FrameOutOfOrder(
            f"t={t:g} s does not come after the previous frame's {session.last_t:g} s: frames "
            f"must come in time order, at most one per {config.min_frame_interval_s:g} s (send "
            '{"reset": true} to restart the clock)'
        )
    if not all(p is None or (isinstance(p, list) and _numbers(p)) for p in frame):
        raise InputError("frame: each point must be a list of 2 or 3 numbers, or null")
    layout = _layout(message.get("layout")) or session.layout
    data = to_model_frames(engine, frames_to_array([frame], "frame"), layout)
    size, corrected = _size(message)
    if size is None and not corrected:
        size, corrected = session.size, session.aspect_corrected
    if size is None and not corrected:
        raise InputError(NO_SIZE)
    if size is not None:
        data = aspect_correct(data, *size)
    session.last_t = t
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
    session.last_t = None
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
    if not _numbers([width, height]) or not (
        0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE
    ):
        raise InputError("image_width and image_height must be positive numbers of pixels")
    if corrected:
        raise InputError(
            "give the image size (raw MediaPipe coordinates) or aspect_corrected: true, not both"
        )
    return (float(width), float(height)), False


def _numbers(values: list) -> bool:
    """Finite JSON numbers (not booleans, not integers too large for a float)."""
    return all(_finite_number(v) for v in values)


def _finite_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return abs(v) < 2**63
    return isinstance(v, float) and math.isfinite(v)
