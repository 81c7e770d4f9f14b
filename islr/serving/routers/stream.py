"""``WS /v1/stream``: landmark frames one by one -> segmentation events (one sign per sign)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from islr.errors import InputError
from islr.inference import Engine, StreamSegmenter
from islr.serving.inputs import frames_to_array, to_model_frames
from islr.serving.state import ServerState

router = APIRouter()


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Landmark frames in, segmentation events out (see islr.inference.streaming)."""
    state: ServerState = ws.app.state.islr
    engine, config = state.engine, state.config
    await ws.accept()

    def classify_frames(frames: np.ndarray) -> np.ndarray:
        return engine.predict_batch([frames])[0]

    segmenter = StreamSegmenter(engine.model_layout, engine.labels, classify_frames, config.stream)
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
    data = to_model_frames(engine, frames_to_array([frame], "frame"), layout)[0]
    t = message.get("t")
    if t is not None and (not _numbers([t]) or not np.isfinite(t)):
        raise InputError("t must be a number of seconds")
    return await run_in_threadpool(segmenter.push, data, t)


def _numbers(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
