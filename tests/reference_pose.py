"""The reference Holistic output (a ``.pose`` file) as arrays, and distances to it (no tests
here): used by tests/test_extract.py and bench/bench_extract_accuracy.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def reference_components(path: Path) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """The reference .pose as normalised (T, n, 3) arrays per component, NaN where missing."""
    from pose_format import Pose

    pose = Pose.read(path.read_bytes())
    width, height = pose.header.dimensions.width, pose.header.dimensions.height
    data = pose.body.data[:, 0].filled(np.nan).astype(np.float64)
    data[pose.body.confidence[:, 0] <= 0] = np.nan
    data[..., 0] /= width
    data[..., 1] /= height
    out, start = {}, 0
    for component in pose.header.components:
        out[component.name] = data[:, start : start + len(component.points)]
        start += len(component.points)
    return out, (width, height)


def found_frames(block: np.ndarray) -> np.ndarray:
    """Frames in which a component was detected (any point not NaN)."""
    return ~np.isnan(block[..., 0]).all(axis=1)


def mean_xy_distance(ours: np.ndarray, ref: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean x, y distance over the frames where both detected the component, and those frames."""
    both = found_frames(ours) & found_frames(ref)
    return float(np.linalg.norm(ours[both, :, :2] - ref[both, :, :2], axis=-1).mean()), both
