"""One video -> one :class:`LandmarkSequence`, with MediaPipe Holistic in video mode.

MediaPipe and OpenCV are imported inside the functions, so importing this module stays cheap.
Facts this module is built around (measured on MediaPipe 0.10.21, CPU):

- only ``model_complexity=1`` ships in the wheel; 0 and 2 try to download a pose model;
- a Holistic graph keeps tracking state, so every video gets a fresh graph (~30 ms to build);
- the native code logs to file descriptor 2 (not ``sys.stderr``) and ignores environment
  variables, so :func:`quiet_native_stderr` points fd 2 at ``/dev/null`` while it runs.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from islr.errors import VideoError, require
from islr.landmarks import LandmarkSequence, LayoutError, get_layout

MODEL_COMPLEXITY = 1
DEFAULT_FPS = 30.0
# A video whose decoder stops this far short of the frame count its container declares is
# truncated (a cut download or copy); containers may overstate the count by a frame or two.
MIN_DECODED_FRACTION = 0.9

# Holistic result attribute for each layout component.
_RESULT_FIELDS = {
    "pose": "pose_landmarks",
    "face": "face_landmarks",
    "left_hand": "left_hand_landmarks",
    "right_hand": "right_hand_landmarks",
}

_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_fd2: int | None = None


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to ``/dev/null`` inside the block, then restore it.

    Re-entrant and thread-safe (the redirection is process-wide, so nested and concurrent users
    share one). Python exceptions still propagate; they are printed after fd 2 is restored.
    """
    global _quiet_depth, _saved_fd2
    with _quiet_lock:
        if _quiet_depth == 0:
            sys.stderr.flush()
            _saved_fd2 = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_fd2 is not None:
                sys.stderr.flush()
                os.dup2(_saved_fd2, 2)
                os.close(_saved_fd2)
                _saved_fd2 = None


def mediapipe_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediapipe")
    except PackageNotFoundError:
        return "unknown"


def extractor_name() -> str:
    """The ``extractor`` string stored with every sequence, e.g. ``mediapipe-holistic 0.10.21``."""
    return f"mediapipe-holistic {mediapipe_version()}"


def require_video(what: str, load: bool = True) -> None:
    """Raise :class:`~islr.errors.MissingExtraError` naming the ``[video]`` extra unless MediaPipe
    and OpenCV are installed; ``load=False`` checks without importing them."""
    for module in ("mediapipe", "cv2"):
        require(module, what, load=load)


def new_holistic():
    """A fresh MediaPipe Holistic graph in video mode (tracking across frames)."""
    require("mediapipe", "extracting landmarks from a video")
    from mediapipe.python.solutions import holistic

    return holistic.Holistic(
        static_image_mode=False,
        model_complexity=MODEL_COMPLEXITY,
        smooth_landmarks=True,
        refine_face_landmarks=False,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


@dataclass
class VideoInfo:
    """What the decoder says about a video, and what decoding it found."""

    fps: float
    fps_assumed: bool
    width: int
    height: int
    declared_frames: int
    decoded_frames: int = 0


def _open_video(path: Path):
    cv2 = require("cv2", "reading a video")

    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path}: permission denied")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: not a readable video (corrupt, truncated or unsupported format)")
    return cap


def iter_frames(
    path: Path, info_out: list[VideoInfo], frame_stride: int = 1, max_side: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(source frame index, RGB frame)`` for every ``frame_stride``-th decoded frame.

    ``info_out`` receives the :class:`VideoInfo` before the first frame; its ``decoded_frames``
    is final once the generator is exhausted. Frames larger than ``max_side`` pixels on their
    long side are shrunk first (normalised coordinates do not depend on the scale).
    """
    import cv2

    cap = _open_video(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        assumed = not (math.isfinite(fps) and fps > 0)
        info = VideoInfo(
            fps=DEFAULT_FPS if assumed else float(fps),
            fps_assumed=assumed,
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            declared_frames=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
        )
        info_out.append(info)
        index = 0
        while True:
            if index % frame_stride:
                if not cap.grab():
                    break
            else:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if max_side and max(bgr.shape[:2]) > max_side:
                    scale = max_side / max(bgr.shape[:2])
                    size = (
                        max(1, round(bgr.shape[1] * scale)),
                        max(1, round(bgr.shape[0] * scale)),
                    )
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
            info.decoded_frames = index
    finally:
        cap.release()


@dataclass(frozen=True)
class _Gather:
    """Where one layout part comes from in a Holistic result and goes to in the frame array."""

    result_field: str
    indices: tuple[int, ...]
    rows: slice


def _gather_plan(layout_name: str) -> list[_Gather]:
    layout = get_layout(layout_name)
    return [
        _Gather(_RESULT_FIELDS[p.component], p.indices, layout.slice(p.component))
        for p in layout.parts
    ]


def results_to_frame(results, plan: list[_Gather], n_points: int) -> np.ndarray:
    """``(n_points, 3)`` float32 from one Holistic result; NaN for undetected components."""
    frame = np.full((n_points, 3), np.nan, dtype=np.float32)
    for part in plan:
        found = getattr(results, part.result_field)
        if found is None:
            continue
        points = found.landmark
        frame[part.rows] = [(points[i].x, points[i].y, points[i].z) for i in part.indices]
    return frame


def _anyone(results) -> bool:
    return any(
        getattr(results, name) is not None
        for name in ("pose_landmarks", "left_hand_landmarks", "right_hand_landmarks")
    )


@dataclass
class ExtractOptions:
    """Settings of one extraction (shared by :func:`extract_video` and the batch runner)."""

    layout: str = "holistic136"
    frame_stride: int = 1
    max_side: int | None = None

    def __post_init__(self) -> None:
        try:
            get_layout(self.layout)
        except LayoutError as e:
            raise VideoError(f"{e} (choose one with --layout)") from None
        if self.frame_stride < 1:
            raise VideoError(f"frame stride must be >= 1, got {self.frame_stride}")
        if self.max_side is not None and self.max_side < 16:
            raise VideoError(f"max side must be at least 16 pixels, got {self.max_side}")


def extract_video(
    path: str | Path,
    layout: str = "holistic136",
    frame_stride: int = 1,
    max_side: int | None = None,
    quiet: bool = True,
    max_seconds: float | None = None,
    max_frames: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> LandmarkSequence:
    """MediaPipe Holistic landmarks of one video, in ``layout``.

    x, y, z are stored as MediaPipe gives them (x, y normalised to the image width and height);
    a component that was not detected in a frame is NaN. Raises :class:`VideoError` for a file
    that is empty, not a video, truncated, has no decodable frame, or shows nobody (no pose and
    no hand in any frame). ``quiet`` silences MediaPipe's native log lines on stderr.

    Bounds for untrusted uploads, each a :class:`VideoError`: ``max_seconds`` of video (refused
    from the header before decoding when it declares more, and while decoding), ``max_frames``
    decoded frames, and ``stop()`` (polled every frame; e.g. a deadline or a client gone).
    """
    options = ExtractOptions(layout, frame_stride, max_side)
    path = Path(path)
    plan = _gather_plan(options.layout)
    n_points = get_layout(options.layout).n_points
    frames: list[np.ndarray] = []
    indices: list[int] = []
    info_out: list[VideoInfo] = []
    anyone = False
    quieting = quiet_native_stderr() if quiet else _no_op()
    with quieting:
        graph = new_holistic()
        try:
            for index, rgb in iter_frames(path, info_out, options.frame_stride, options.max_side):
                _check_bounds(path, info_out[0], index, max_seconds, max_frames, stop)
                results = graph.process(rgb)
                anyone = anyone or _anyone(results)
                frames.append(results_to_frame(results, plan, n_points))
                indices.append(index)
        finally:
            graph.close()
    info = info_out[0]
    if not frames:
        raise VideoError(f"{path}: no decodable frames (corrupt or unsupported video)")
    if info.declared_frames and info.decoded_frames < MIN_DECODED_FRACTION * info.declared_frames:
        raise VideoError(
            f"{path}: truncated video: decoded {info.decoded_frames} of "
            f"{info.declared_frames} frames"
        )
    if not anyone:
        raise VideoError(f"{path}: nobody detected (no pose and no hands in any frame)")
    extra = {
        "image_width": info.width,
        "image_height": info.height,
        "frame_stride": options.frame_stride,
        "source_frames": info.decoded_frames,
    }
    if info.fps_assumed:
        extra["fps_assumed"] = True  # the container gave no frame rate; DEFAULT_FPS is a guess
    if options.max_side:
        extra["max_side"] = options.max_side
    return LandmarkSequence(
        data=np.stack(frames),
        layout=options.layout,
        fps=info.fps / options.frame_stride,
        frame_indices=np.asarray(indices, dtype=np.int32),
        source=str(path),
        extractor=extractor_name(),
        extra=extra,
    )


def _check_bounds(
    path: Path,
    info: VideoInfo,
    index: int,
    max_seconds: float | None,
    max_frames: int | None,
    stop: Callable[[], bool] | None,
) -> None:
    if max_seconds is not None:
        declared = info.declared_frames / info.fps if index == 0 else 0.0
        seconds = max(declared, (index + 1) / info.fps)
        if seconds > max_seconds:
            raise VideoError(
                f"{path}: the video is longer than {max_seconds:g} s ({seconds:.1f} s or more)"
            )
    if max_frames is not None and index >= max_frames:
        raise VideoError(f"{path}: the video has more than {max_frames} frames")
    if stop is not None and stop():
        raise VideoError(f"{path}: extraction stopped (took too long, or the client left)")


@contextmanager
def _no_op() -> Iterator[None]:
    yield
