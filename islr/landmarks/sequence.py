"""The one data type every stage passes around: a landmark sequence.

``LandmarkSequence.data`` is a ``(T, N, C)`` float32 array: T frames, N points in the order of a
named :mod:`layout <islr.landmarks.layouts>`, C coordinates (x, y, z as MediaPipe gives them:
x, y normalised to the image width/height, z relative depth). A point that was not detected in a
frame is NaN in every coordinate. Normalisation is the model input pipeline's job, never the
cache's.

On disk a sequence is one compressed ``.npz`` holding ``data``, ``frame_indices`` and a JSON
``meta`` string; :func:`save_sequence` writes it atomically.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from islr.landmarks.layouts import LayoutError, get_layout

FILE_FORMAT_VERSION = 1
COORDS = ("x", "y", "z")


class LandmarkFileError(ValueError):
    """A landmark file is missing, unreadable or does not hold a valid sequence."""


@dataclass
class LandmarkSequence:
    """Landmarks of one video.

    Attributes:
        data: ``(T, N, C)`` float32, NaN where a point was not detected.
        layout: name of the layout the N points follow (``holistic136``, ``hands_pose75``...).
        fps: frames per second of the *stored* frames (source fps / frame stride), if known.
        frame_indices: ``(T,)`` int, index of each stored frame in the source video.
        source: where the landmarks came from (a video path, an imported file...).
        extractor: what produced them and its version, e.g. ``mediapipe-holistic 0.10.21``.
        extra: any further JSON-serialisable metadata (image size, importer, synthetic...).
    """

    data: np.ndarray
    layout: str
    fps: float | None = None
    frame_indices: np.ndarray | None = None
    source: str = ""
    extractor: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 3:
            raise LandmarkFileError(f"landmark data must be (T, N, C), got shape {self.data.shape}")
        layout = get_layout(self.layout)
        if self.data.shape[1] != layout.n_points:
            raise LandmarkFileError(
                f"layout {self.layout!r} has {layout.n_points} points, data has {self.data.shape[1]}"
            )
        if not 2 <= self.data.shape[2] <= 3:
            raise LandmarkFileError(f"expected 2 or 3 coordinates, got {self.data.shape[2]}")
        if np.isinf(self.data).any():
            raise LandmarkFileError("landmark data contains Inf (use NaN for missing points)")
        if self.frame_indices is None:
            self.frame_indices = np.arange(self.n_frames, dtype=np.int32)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int32)
        if self.frame_indices.shape != (self.n_frames,):
            raise LandmarkFileError(
                f"frame_indices has shape {self.frame_indices.shape}, expected ({self.n_frames},)"
            )

    @property
    def n_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.data.shape[1])

    @property
    def n_coords(self) -> int:
        return int(self.data.shape[2])

    def component(self, name: str) -> np.ndarray:
        """The ``(T, n, C)`` block of one MediaPipe component (view, not a copy)."""
        return self.data[:, get_layout(self.layout).slice(name)]

    def detected(self, name: str) -> np.ndarray:
        """``(T,)`` bool: frames where any point of ``name`` was detected."""
        return ~np.isnan(self.component(name)).all(axis=(1, 2))

    def meta(self) -> dict:
        return {
            "format_version": FILE_FORMAT_VERSION,
            "layout": self.layout,
            "fps": self.fps,
            "source": self.source,
            "extractor": self.extractor,
            "coords": list(COORDS[: self.n_coords]),
            "extra": self.extra,
        }


def sequence_to_bytes(seq: LandmarkSequence) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        data=seq.data,
        frame_indices=seq.frame_indices,
        meta=np.array(json.dumps(seq.meta())),
    )
    return buf.getvalue()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_sequence(seq: LandmarkSequence, path: str | Path) -> Path:
    """Save ``seq`` as a compressed ``.npz`` at ``path``, atomically."""
    path = Path(path)
    atomic_write_bytes(path, sequence_to_bytes(seq))
    return path


def load_sequence(path: str | Path) -> LandmarkSequence:
    """Load a sequence saved by :func:`save_sequence`; a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkFileError(f"{path}: no such landmark file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = npz["data"]
            frame_indices = npz["frame_indices"]
            meta = json.loads(str(npz["meta"]))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise LandmarkFileError(f"{path}: not an islr landmark file ({e})") from e
    if meta.get("format_version", 0) > FILE_FORMAT_VERSION:
        raise LandmarkFileError(
            f"{path}: written by a newer islr (format {meta['format_version']}); upgrade islr"
        )
    try:
        return LandmarkSequence(
            data=data,
            layout=meta["layout"],
            fps=meta.get("fps"),
            frame_indices=frame_indices,
            source=meta.get("source", ""),
            extractor=meta.get("extractor", ""),
            extra=meta.get("extra", {}),
        )
    except (KeyError, LayoutError) as e:
        raise LandmarkFileError(f"{path}: {e}") from e
