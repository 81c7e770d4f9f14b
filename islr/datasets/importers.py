"""Bring landmarks that others extracted into a cache: INCLUDE keypoint JSON and ``.pose`` files.

Both importers append to an existing cache through :mod:`islr.datasets.import_batch` (parallel,
resumable, a bad input becomes a ``failures.csv`` row and the batch goes on). The other formats
live in their own modules; :mod:`islr.datasets.formats` names them all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from islr.datasets.import_batch import (
    ImportFileError,
    ImportJob,
    ImportSummary,
    ProgressFn,
    file_job,
    find_inputs,
    run_import,
)
from islr.errors import DatasetError
from islr.landmarks.cache import LandmarkCache, ManifestEntry
from islr.landmarks.labels import LabelError, normalise_label
from islr.landmarks.layouts import (
    HANDS_POSE75,
    POSE_LEFT_ELBOW,
    POSE_LEFT_SHOULDER,
    POSE_LEFT_WRIST,
    POSE_RIGHT_ELBOW,
    POSE_RIGHT_SHOULDER,
    POSE_RIGHT_WRIST,
    get_layout,
)
from islr.landmarks.sequence import LandmarkSequence

INCLUDE_IMAGE_SIZE = (1920, 1080)
INCLUDE_JSON_EXTRACTOR = "include-keypoints-json (MediaPipe Hands + Pose, 2-D)"
_BATCH = 64  # manifest lines appended (and fsynced) per batch; sample files are written first


# ---- INCLUDE keypoint JSON ---------------------------------------------------------------------
def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean over finite values; NaN (without a warning) where there are none."""
    seen = ~np.isnan(a)
    count = seen.sum(axis=axis)
    total = np.where(seen, a, 0.0).sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def assign_hands(
    pose_xy: np.ndarray, hand1: np.ndarray, hand2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sort two unlabelled hands into the signer's ``(left, right)`` hand, frame by frame.

    ``pose_xy`` (T, 33, 2); ``hand1``/``hand2`` (T, 21, 2), NaN where not detected. Each hand goes
    to the nearer pose wrist (15 = signer's left, 16 = right); when both are present the pair is
    assigned jointly (the cheaper of the two 2x2 assignments), so two hands never land on one
    side. A missing pose wrist is stood in for by its elbow, then shoulder; with no arm at all,
    the image side decides (the signer's left is on the image right).
    """
    t = len(pose_xy)

    def anchor(indices: tuple[int, ...], fallback_x: np.ndarray) -> np.ndarray:
        out = np.full((t, 2), np.nan)
        for idx in indices:
            gap = np.isnan(out[:, 0])
            out[gap] = pose_xy[gap, idx]
        gap = np.isnan(out).any(axis=1)
        out[gap, 0] = fallback_x[gap]
        out[gap, 1] = 0.6
        return out

    centre = _nanmean(pose_xy[:, [0, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER], 0], axis=1)
    centre = np.where(np.isnan(centre), 0.5, centre)
    left = anchor((POSE_LEFT_WRIST, POSE_LEFT_ELBOW, POSE_LEFT_SHOULDER), centre + 0.15)
    right = anchor((POSE_RIGHT_WRIST, POSE_RIGHT_ELBOW, POSE_RIGHT_SHOULDER), centre - 0.15)

    def position(hand: np.ndarray) -> np.ndarray:
        wrist = hand[:, 0].copy()
        gap = np.isnan(wrist).any(axis=1)
        if gap.any():
            wrist[gap] = _nanmean(hand[gap], axis=1)
        return wrist

    p1, p2 = position(hand1), position(hand2)
    seen1, seen2 = ~np.isnan(p1).any(axis=1), ~np.isnan(p2).any(axis=1)

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.linalg.norm(a - b, axis=1), nan=np.inf)

    d1l, d1r, d2l, d2r = dist(p1, left), dist(p1, right), dist(p2, left), dist(p2, right)
    both = seen1 & seen2
    swap = np.where(both, d1r + d2l < d1l + d2r, False)
    # a single hand goes to the nearer wrist; hand1 -> left unless it is nearer the right
    swap |= seen1 & ~seen2 & (d1r < d1l)
    swap |= ~seen1 & seen2 & (d2l <= d2r)
    left_hand = np.where(swap[:, None, None], hand2, hand1)
    right_hand = np.where(swap[:, None, None], hand1, hand2)
    return left_hand, right_hand


def _coords(d: dict, key: str, n_points: int) -> np.ndarray:
    if key not in d:
        raise ImportFileError(f"no {key!r} field (not an INCLUDE keypoint file?)")
    try:
        arr = np.asarray(d[key], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ImportFileError(f"{key!r} is not a [frames][{n_points}] array of numbers") from e
    if arr.ndim != 2 or arr.shape[1] != n_points:
        raise ImportFileError(f"{key!r} has shape {arr.shape}, expected [frames][{n_points}]")
    return arr


def read_include_json(path: str | Path) -> tuple[LandmarkSequence, str, str]:
    """One INCLUDE keypoint JSON -> ``(hands_pose75 sequence, label, uid)``.

    The file holds ``pose_x/pose_y`` [T][33] and ``hand1_x/hand1_y/hand2_x/hand2_y`` [T][21]
    (normalised x, y; NaN = not detected); hands are re-assigned to left/right by the pose
    wrists; z is NaN (the format is 2-D).
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            d = json.load(f)
    except UnicodeDecodeError as e:
        raise ImportFileError("not a text file (expected INCLUDE keypoint JSON)") from e
    except json.JSONDecodeError as e:
        raise ImportFileError(f"not valid JSON ({e.msg} at line {e.lineno})") from e
    except RecursionError:
        raise ImportFileError("JSON nested too deeply (not an INCLUDE keypoint file)") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise ImportFileError(f"not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ImportFileError("the JSON is not an object with pose_x, pose_y, hand1_x... fields")
    pose_x, pose_y = _coords(d, "pose_x", 33), _coords(d, "pose_y", 33)
    hands = [_coords(d, f"hand{h}_{c}", 21) for h in (1, 2) for c in "xy"]
    lengths = {len(a) for a in [pose_x, pose_y, *hands]}
    if len(lengths) != 1:
        raise ImportFileError(f"pose and hand arrays have different frame counts {sorted(lengths)}")
    t = lengths.pop()
    if t == 0:
        raise ImportFileError("no frames")
    label = d.get("label")
    if not isinstance(label, str) or not label.strip():
        raise ImportFileError("no 'label' field (the sign name)")
    uid = d.get("uid") or path.stem
    if not isinstance(uid, str):
        raise ImportFileError(f"'uid' is not a string ({type(uid).__name__})")
    pose = np.stack([pose_x, pose_y], axis=-1)
    hand1 = np.stack(hands[:2], axis=-1)
    hand2 = np.stack(hands[2:], axis=-1)
    left, right = assign_hands(pose, hand1, hand2)
    layout = HANDS_POSE75
    data = np.full((t, layout.n_points, 3), np.nan, dtype=np.float32)
    data[:, layout.slice("pose"), :2] = pose
    data[:, layout.slice("left_hand"), :2] = left
    data[:, layout.slice("right_hand"), :2] = right
    if np.isinf(data).any():
        raise ImportFileError("coordinates contain Inf")
    seq = LandmarkSequence(
        data=data,
        layout=layout.name,
        source=path.name,
        extractor=INCLUDE_JSON_EXTRACTOR,
        # INCLUDE videos are 16:9 landscape (1920x1080); the files do not say so, but the model input
        # needs the aspect (islr.features.aspect_corrected). Checked on INCLUDE-50 train: the
        # median nose-to-shoulder height / shoulder width is 1.04 in raw units and 0.59 once y is
        # scaled by 1080/1920, as in videos of known size (FOOTBALL.pose 0.53, pose_viewer 0.62).
        extra={
            "importer": "include-json",
            "uid": uid,
            "image_width": INCLUDE_IMAGE_SIZE[0],
            "image_height": INCLUDE_IMAGE_SIZE[1],
        },
    )
    return seq, label.strip(), uid


def _video_id(uid: str, label: str) -> str:
    """INCLUDE uids are ``<label>_<video>`` (``bank_MVI_3336``): the video part."""
    prefix = label + "_"
    return uid[len(prefix) :] if uid.startswith(prefix) and len(uid) > len(prefix) else uid


# ---- pose-format .pose -------------------------------------------------------------------------
_POSE_NAMES = [
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
]  # fmt: skip
_HAND_NAMES = [
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP",
    "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP",
    "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP", "RING_FINGER_MCP",
    "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP", "PINKY_MCP", "PINKY_PIP",
    "PINKY_DIP", "PINKY_TIP",
]  # fmt: skip
POSE_COMPONENTS = {
    "POSE_LANDMARKS": "pose",
    "FACE_LANDMARKS": "face",
    "LEFT_HAND_LANDMARKS": "left_hand",
    "RIGHT_HAND_LANDMARKS": "right_hand",
}


def _mediapipe_index(component: str, point_name: str) -> int | None:
    if component == "pose":
        names = _POSE_NAMES
    elif component in ("left_hand", "right_hand"):
        names = _HAND_NAMES
    else:  # face mesh points are named by their index
        return int(point_name) if point_name.isdigit() else None
    return names.index(point_name) if point_name in names else None


def read_pose_file(path: str | Path, layout: str = "holistic136") -> LandmarkSequence:
    """A MediaPipe Holistic ``.pose`` file (pose-format) -> a sequence in ``layout``.

    Points are matched by component and point name, so files holding only some points (a
    reduced face, 8 pose points) work: what the file lacks is NaN. x, y are divided by the
    header's width and height (``.pose`` stores pixels); z is kept; a point with confidence 0 or
    masked is NaN. The first person is used.
    """
    from pose_format import Pose

    path = Path(path)
    target = get_layout(layout)
    try:
        pose = Pose.read(path.read_bytes())
    except Exception as e:  # pose-format raises assorted errors on foreign bytes
        raise ImportFileError(f"not a readable .pose file ({type(e).__name__}: {e})") from e
    header, body = pose.header, pose.body
    width, height = header.dimensions.width, header.dimensions.height
    if not width or not height:
        raise ImportFileError("the .pose header has no image width/height")
    raw = np.ma.getdata(body.data).astype(np.float64)
    if raw.ndim != 4 or raw.shape[0] == 0 or raw.shape[1] == 0:
        raise ImportFileError(f"no frames or no person (data shape {raw.shape})")
    missing = np.ma.getmaskarray(body.data)[:, 0].any(axis=-1) | (body.confidence[:, 0] <= 0)
    frames = raw[:, 0]  # (T, points, dims)
    t = frames.shape[0]
    data = np.full((t, target.n_points, 3), np.nan, dtype=np.float32)
    offset, found = 0, []
    for component in header.components:
        ours = POSE_COMPONENTS.get(component.name)
        n = len(component.points)
        if ours is not None and target.has(ours):
            found.append(component.name)
            part = next(p for p in target.parts if p.component == ours)
            row_of = {mp: target.slice(ours).start + j for j, mp in enumerate(part.indices)}
            for k, name in enumerate(component.points):
                idx = _mediapipe_index(ours, name)
                row = row_of.get(idx) if idx is not None else None
                if row is None:
                    continue
                block = frames[:, offset + k, :3]
                data[:, row, 0] = block[:, 0] / width
                data[:, row, 1] = block[:, 1] / height
                if block.shape[1] > 2:
                    data[:, row, 2] = block[:, 2]
                data[missing[:, offset + k], row] = np.nan
        offset += n
    if not found:
        names = ", ".join(c.name for c in header.components)
        raise ImportFileError(
            f"no MediaPipe Holistic components for layout {layout!r} (file has: {names})"
        )
    data[~np.isfinite(data)] = np.nan
    return LandmarkSequence(
        data=data,
        layout=target.name,
        fps=float(body.fps) if body.fps else None,
        source=path.name,
        extractor="pose-format .pose (MediaPipe Holistic)",
        extra={"importer": "pose", "image_width": int(width), "image_height": int(height)},
    )


def import_include_json(
    src: str | Path,
    out: str | Path,
    split: str = "",
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import AI4Bharat INCLUDE keypoint JSON files (a folder, searched recursively, or one file)
    into the cache at ``out`` (hands_pose75, hands assigned to left/right by the pose wrists)."""
    src = Path(src)
    files = find_inputs(src, ".json", skip=lambda p: p.name.startswith("label_map"))
    root = src if src.is_dir() else src.parent
    jobs = [file_job(p, root) for p in files]

    def convert(job: ImportJob) -> tuple[LandmarkSequence, ManifestEntry]:
        seq, label, uid = read_include_json(job.path)
        entry = ManifestEntry(
            id=uid,
            label=label,
            label_raw=label,
            extra={"importer": "include-json", "video": _video_id(uid, label), "file": job.source},
        )
        return seq, entry

    return run_import(
        "include-json", jobs, out, split, convert, progress, workers=workers,
        exists=lambda source: (root / source).exists(),
    )  # fmt: skip


def import_pose_files(
    src: str | Path,
    out: str | Path,
    split: str = "",
    layout: str = "holistic136",
    label: str | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import pose-format ``.pose`` files (one file, or a folder searched recursively). The label
    is ``label`` if given, else the sign folder the file sits in (INCLUDE-style names work)."""
    from islr.extract.paths import label_from_path, sample_id_for

    src = Path(src)
    get_layout(layout)  # fail early on an unknown layout
    if label is not None:
        try:
            label = normalise_label(label)
        except LabelError as e:
            raise DatasetError(f"--label: {e}") from None
    files = find_inputs(src, ".pose")
    root = src if src.is_dir() else src.parent
    jobs = [file_job(p, root) for p in files]

    def convert(job: ImportJob) -> tuple[LandmarkSequence, ManifestEntry]:
        seq = read_pose_file(job.path, layout)
        found, found_raw, category = label_from_path(job.source)
        extra = {"importer": "pose"}
        if category:
            extra["category"] = category
        entry = ManifestEntry(
            id=sample_id_for(job.source),
            label=label if label is not None else found,
            label_raw=label if label is not None else found_raw,
            extra=extra,
        )
        return seq, entry

    return run_import(
        "pose", jobs, out, split, convert, progress, layout=layout, workers=workers,
        exists=lambda source: (root / source).exists(),
    )  # fmt: skip


def import_include_splits(
    root: str | Path, out: str | Path, splits: tuple[str, ...] = ("train", "val")
) -> list[str]:
    """Import ``root/<split>/`` (INCLUDE keypoint JSON, e.g. INCLUDE-50's ``train``, ``val``) into
    the cache at ``out`` with that split, skipping splits the cache already holds; the splits
    imported now."""
    out = Path(out)
    have = (
        {e.split for e in LandmarkCache(out).entries()}
        if (out / "manifest.jsonl").exists()
        else set()
    )
    todo = [split for split in splits if split not in have]
    for split in todo:
        import_include_json(Path(root) / split, out, split=split)
    return todo


__all__ = [
    "INCLUDE_IMAGE_SIZE",
    "ImportFileError",
    "ImportSummary",
    "assign_hands",
    "import_include_json",
    "import_include_splits",
    "import_pose_files",
    "read_include_json",
    "read_pose_file",
]
