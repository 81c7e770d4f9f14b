"""Landmarks and uploads as clients send them -> what the engine takes; bad input is an
:class:`~islr.errors.InputError` (a 422) with a message, never a crash."""

from __future__ import annotations

from typing import Any

import numpy as np

from islr.errors import InputError
from islr.features import to_layout
from islr.inference import Engine
from islr.landmarks import LayoutError, get_layout

# First bytes of the containers behind VIDEO_EXTENSIONS (mp4/mov: "ftyp" box at offset 4).
_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3", b"RIFF")  # Matroska/WebM, AVI


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
    except OverflowError:
        raise InputError(f"{what}: a coordinate is too large") from None
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


def to_model_frames(engine: Engine, data: np.ndarray, layout: str | None) -> np.ndarray:
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


def body_landmarks(
    engine: Engine, body: Any, what: str | None = None
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """A request's landmark sequence (``frames``, ``layout``, ``image_width``,
    ``image_height``: the body of ``POST /v1/predict``, or one take of a sign) -> the model's
    points and coordinates, and the image size for the aspect correction. ``what`` names it in
    errors (e.g. ``"take 2"``)."""
    if (body.image_width is None) != (body.image_height is None):
        prefix = f"{what}: " if what else ""
        raise InputError(f"{prefix}give both image_width and image_height, or neither")
    data = to_model_frames(engine, frames_to_array(body.frames, what or "frames"), body.layout)
    size = (body.image_width, body.image_height) if body.image_width else None
    return data, size
