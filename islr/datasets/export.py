"""``islr export-data``: a landmark cache written back out for other tools.

- ``npy``: ``OUT/<sample id>.npy`` as ``(T, K)`` float32 in a flat frame layout (default: the
  cache layout's points, x, y, z per point; x, y when the cache has no z), missing points as
  zeros; plus ``labels.csv`` (file, label, split, signer) and ``frame_layout.yaml``, so
  ``islr import npy OUT --frame-layout OUT/frame_layout.yaml --labels OUT/labels.csv`` reads it
  back.
- ``pose``: ``OUT/<sample id>.pose`` (pose-format, MediaPipe Holistic component and point names;
  pixels of the sample's image size, 1000x1000 when it is unknown), and ``labels.csv``.

Files are written atomically; an existing export is overwritten file by file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from islr.datasets.frame_layouts import FrameLayout, flatten, from_layout, get_frame_layout
from islr.errors import DatasetError
from islr.landmarks.cache import LandmarkCache
from islr.landmarks.layouts import get_layout
from islr.landmarks.sequence import LandmarkSequence, atomic_write_bytes

EXPORT_FORMATS = ("npy", "pose")
UNKNOWN_IMAGE_SIDE = 1000  # pixels per unit when a sample's image size is unknown


@dataclass
class ExportSummary:
    format: str
    out: Path
    written: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    frame_layout: str = ""


def _frame_layout_yaml(layout: FrameLayout) -> str:
    import yaml

    d = {
        "name": layout.name,
        "interleave": layout.interleave,
        "hands": layout.hands,
        "store_layout": layout.store_layout,
        "blocks": [
            {"component": b.component, "indices": list(b.indices), "coords": b.coords}
            for b in layout.blocks
        ],
    }
    return yaml.safe_dump(d, sort_keys=False)


def sequence_to_npy(seq: LandmarkSequence, frame_layout: FrameLayout) -> np.ndarray:
    """A sequence as a flat ``(T, K)`` float32 array of ``frame_layout`` (missing = 0)."""
    from islr.datasets.frame_layouts import gather_points, row_map

    data = gather_points(seq.data, row_map(get_layout(seq.layout), frame_layout.points))
    return flatten(data, frame_layout)


def _mediapipe_point_names(component: str, indices: tuple[int, ...]) -> list[str]:
    from islr.datasets.importers import _HAND_NAMES, _POSE_NAMES

    if component == "pose":
        return [_POSE_NAMES[i] for i in indices]
    if component in ("left_hand", "right_hand"):
        return [_HAND_NAMES[i] for i in indices]
    return [str(i) for i in indices]


def sequence_to_pose_bytes(seq: LandmarkSequence) -> bytes:
    """A sequence as pose-format ``.pose`` bytes that ``islr import pose`` reads back."""
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    from islr.datasets.importers import POSE_COMPONENTS

    names = {ours: theirs for theirs, ours in POSE_COMPONENTS.items()}
    layout = get_layout(seq.layout)
    width = int(seq.extra.get("image_width") or UNKNOWN_IMAGE_SIDE)
    height = int(seq.extra.get("image_height") or UNKNOWN_IMAGE_SIDE)
    components = [
        PoseHeaderComponent(
            names[p.component], _mediapipe_point_names(p.component, p.indices), [], [], "XYZC"
        )
        for p in layout.parts
    ]
    header = PoseHeader(0.1, PoseHeaderDimensions(width, height, 0), components)
    data = np.zeros((seq.n_frames, 1, layout.n_points, 3), dtype=np.float32)
    data[:, 0, :, : seq.n_coords] = np.nan_to_num(seq.data)
    data[..., 0] *= width
    data[..., 1] *= height
    present = ~np.isnan(seq.data[..., :2]).any(axis=-1)
    confidence = present[:, None, :].astype(np.float32)
    mask = np.repeat(~present[:, None, :, None], 3, axis=-1)
    body = NumPyPoseBody(seq.fps or 30.0, np.ma.masked_array(data, mask=mask), confidence)
    buf = io.BytesIO()
    Pose(header, body).write(buf)
    return buf.getvalue()


def export_cache(
    cache_dir: str | Path,
    out: str | Path,
    fmt: str = "npy",
    frame_layout: str | None = None,
    split: str | None = None,
) -> ExportSummary:
    """Write the samples of the cache at ``cache_dir`` (optionally one split) to ``out``."""
    if fmt not in EXPORT_FORMATS:
        raise DatasetError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    cache = LandmarkCache(cache_dir)
    entries = cache.require_entries(split)
    out = Path(out)
    if out.resolve() == Path(cache_dir).resolve():
        raise DatasetError("export into another folder than the cache itself")
    layouts = {e.layout for e in entries}
    summary = ExportSummary(fmt, out)
    order: FrameLayout | None = None
    if fmt == "npy":
        if frame_layout:
            order = get_frame_layout(frame_layout)
        else:
            if len(layouts) > 1:
                raise DatasetError(
                    f"the cache holds several layouts {sorted(layouts)}; give --frame-layout"
                )
            first = cache.load(entries[0])
            coords = "xy" if np.isnan(first.data[..., 2:]).all() else "xyz"
            order = from_layout(layouts.pop(), coords)
        summary.frame_layout = order.name
    rows = []
    suffix = "." + fmt
    for entry in entries:
        rel = entry.id + suffix
        try:
            seq = cache.load(entry)
            if order is not None:
                buf = io.BytesIO()
                np.save(buf, sequence_to_npy(seq, order), allow_pickle=False)
                payload = buf.getvalue()
            else:
                payload = sequence_to_pose_bytes(seq)
            atomic_write_bytes(out / rel, payload)
        except Exception as e:  # one unreadable sample never stops the export
            summary.failures.append((entry.id, f"{type(e).__name__}: {e}"))
            continue
        rows.append([rel, entry.label, entry.split, str(entry.extra.get("signer", ""))])
        summary.written += 1
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "label", "split", "signer"])
    writer.writerows(rows)
    atomic_write_bytes(out / "labels.csv", buf.getvalue().encode("utf-8"))
    if order is not None:
        atomic_write_bytes(out / "frame_layout.yaml", _frame_layout_yaml(order).encode("utf-8"))
    return summary
