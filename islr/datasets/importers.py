"""Bring landmarks that others extracted into a cache: INCLUDE keypoint JSON and ``.pose`` files.

Both importers append to an existing cache and are resumable: an input whose size and mtime match
its manifest entry is skipped (only its split is updated if ``--split`` changed). A bad input
becomes a ``failures.csv`` row; the batch goes on.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from islr.errors import DatasetError
from islr.landmarks.cache import LandmarkCache, ManifestEntry, sample_path_for
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
from islr.landmarks.sequence import LandmarkFileError, LandmarkSequence

INCLUDE_IMAGE_SIZE = (1920, 1080)
INCLUDE_JSON_EXTRACTOR = "include-keypoints-json (MediaPipe Hands + Pose, 2-D)"
_BATCH = 64  # manifest lines appended (and fsynced) per batch; sample files are written first

ProgressFn = Callable[[int, int, str], None]  # (done, total, current file)


@dataclass
class ImportSummary:
    """What one import run did."""

    format: str
    found: int = 0
    imported: int = 0
    skipped: int = 0  # unchanged since the last import
    resplit: int = 0  # unchanged, but given the new --split
    failures: list[tuple[str, str]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)


class ImportFileError(ValueError):
    """One input file cannot be imported (recorded in failures.csv, the batch goes on)."""


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


# ---- the batch ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportJob:
    """One input to import: a file (or, for MP_Data, a folder of frames).

    ``source`` is its POSIX path relative to the folder given to ``islr import`` (the manifest's
    ``source`` and the ``failures.csv`` row name it); ``size`` and ``mtime`` let a rerun skip it
    when unchanged; ``info`` carries what a listing already knows (label, signer...).
    """

    source: str
    path: Path
    size: int
    mtime: float
    info: dict = field(default_factory=dict, compare=False)


Convert = Callable[[ImportJob], tuple[LandmarkSequence, ManifestEntry]]


def file_job(path: Path, root: Path, **info) -> ImportJob:
    """An :class:`ImportJob` for ``path``, named relative to ``root``."""
    stat = path.stat()
    source = path.relative_to(root).as_posix() if path != root else path.name
    return ImportJob(source, path, stat.st_size, stat.st_mtime, dict(info))


def default_import_workers() -> int:
    """Threads converting files at once: the CPUs this process may use (at least 2: reading
    waits on the disk, zlib and pyarrow release the GIL)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(2, cpus)


def _find_inputs(
    src: Path, suffix: str, skip: Callable[[Path], bool] = lambda p: False
) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise DatasetError(f"{src}: no such file or folder")
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and p.suffix.lower() == suffix and not p.name.startswith(".") and not skip(p)
    )
    if not files:
        raise DatasetError(f"{src}: no {suffix} files found (is this the right folder?)")
    return files


def _reason(error: BaseException) -> str:
    """One line for failures.csv: our own errors as they are, anything else with its type."""
    if isinstance(error, ImportFileError | LandmarkFileError):
        return str(error)
    if isinstance(error, RecursionError):
        return "nested too deeply to read"
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read: {error.strerror}"
    return f"{type(error).__name__}: {error}"


class _SampleIds:
    """Which input owns each sample id, shared by the converting threads: a sample file is only
    written by the input that claimed its id (another input with the same id fails)."""

    def __init__(self, existing: list[ManifestEntry], exists: Callable[[str], bool] | None):
        self._owner = {e.id: e.source for e in existing}
        self._exists = exists
        self._lock = threading.Lock()

    def claim(self, sample_id: str, source: str) -> None:
        with self._lock:
            other = self._owner.get(sample_id)
            if other and other != source and (self._exists is None or self._exists(other)):
                raise ImportFileError(
                    f"sample id {sample_id!r} was already imported from {other}; "
                    "import one of the two into another cache"
                )
            self._owner[sample_id] = source

    def release(self, sample_id: str, source: str) -> None:
        with self._lock:
            if self._owner.get(sample_id) == source:
                del self._owner[sample_id]


def _convert_one(convert: Convert, job: ImportJob, ids: _SampleIds, writer):
    """Worker side: read, convert and save one input (the file is fsynced here, in parallel);
    its manifest entry, or the exception."""
    try:
        seq, entry = convert(job)
        if not entry.id:
            raise ImportFileError("no sample id")
        try:
            sample_path_for(entry.id)
        except ValueError as e:
            raise ImportFileError(str(e)) from None
        ids.claim(entry.id, job.source)
        try:
            writer.write_sample(seq, entry)
        except BaseException:
            ids.release(entry.id, job.source)
            raise
        return entry
    except Exception as e:  # one bad input never stops the batch: it becomes its failure row
        return e


def _import(
    fmt: str,
    jobs: list[ImportJob],
    out: str | Path,
    split: str,
    convert: Convert,
    progress: ProgressFn | None,
    layout: str | None = None,
    workers: int | None = None,
    exists: Callable[[str], bool] | None = None,
) -> ImportSummary:
    """Convert ``jobs`` in parallel threads into the cache at ``out``: the threads write the
    sample files, this thread appends their manifest lines in job order (so a sample's file is
    on disk before its line). An input whose size and mtime (and, if given, stored ``layout``)
    match its manifest entry is skipped; a failed one becomes a failures.csv row.
    ``exists(source)`` tells whether an input is still there (for sample-id clashes)."""
    summary = ImportSummary(format=fmt, found=len(jobs))
    cache = LandmarkCache(out)
    with cache.writer(batch=_BATCH) as writer:
        existing = cache.entries() if cache.exists() else []
        by_source = {e.source: e for e in existing}
        todo: list[ImportJob] = []
        for job in jobs:
            old = by_source.get(job.source)
            if (
                old
                and old.source_size == job.size
                and old.source_mtime == job.mtime
                and (layout is None or old.layout == layout)
            ):
                summary.labels.add(old.label)
                if split and old.split != split:
                    writer.append_entries([replace(old, split=split)])
                    summary.resplit += 1
                else:
                    summary.skipped += 1
            else:
                todo.append(job)
        done = len(jobs) - len(todo)
        if progress is not None and done:
            progress(done, len(jobs), "")
        retried: list[str] = []
        n_threads = max(1, min(workers or default_import_workers(), len(todo) or 1))
        ids = _SampleIds(existing, exists)
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            # a bounded window of jobs in flight: memory stays flat on 94k-file corpora
            window = 4 * n_threads
            pending = [pool.submit(_convert_one, convert, j, ids, writer) for j in todo[:window]]
            for n, job in enumerate(todo):
                result = pending[n].result()
                pending[n] = None  # type: ignore[call-overload]
                if n + window < len(todo):
                    next_job = todo[n + window]
                    pending.append(pool.submit(_convert_one, convert, next_job, ids, writer))
                old = by_source.get(job.source)
                if isinstance(result, BaseException):
                    reason = _reason(result)
                    summary.failures.append((job.source, reason))
                    writer.record_failure(job.source, reason)
                else:
                    entry = result
                    entry.split = split or entry.split or (old.split if old else "")
                    entry.source, entry.source_size, entry.source_mtime = (
                        job.source,
                        job.size,
                        job.mtime,
                    )
                    writer.append_entries([entry])  # its file is on disk already
                    retried.append(job.source)
                    summary.imported += 1
                    summary.labels.add(entry.label)
                if progress is not None:
                    progress(done + n + 1, len(jobs), job.source)
        writer.clear_failures(retried)
    return summary


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
    files = _find_inputs(src, ".json", skip=lambda p: p.name.startswith("label_map"))
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

    return _import(
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
    files = _find_inputs(src, ".pose")
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

    return _import(
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


# ---- every format behind one name --------------------------------------------------------------
IMPORT_FORMATS = {
    "include-json": "AI4Bharat INCLUDE keypoint JSON, one file per video (pose + 2 hands, x/y)",
    "pose": "pose-format .pose files (MediaPipe Holistic)",
    "seed-npy": "the seed notebook's cache: (T, 408) .npy per video + file_to_label.json",
    "mpdata": "MP_Data/<sign>/<sequence>/<frame>.npy (1662, 258 or 126 values per frame)",
    "npy": "(T, K) .npy arrays of a declared frame layout (--frame-layout)",
    "gislr": "Kaggle asl-signs (GISLR): train.csv + parquet files (needs islr[gislr])",
    "openhands": "OpenHands pose .pkl files ({keypoints (T, 75, C), confidences})",
}


def _importer(fmt: str) -> Callable[..., ImportSummary]:
    if fmt == "include-json":
        return import_include_json
    if fmt == "pose":
        return import_pose_files
    if fmt in ("seed-npy", "mpdata", "npy"):
        from islr.datasets import flat_formats

        return {
            "seed-npy": flat_formats.import_seed_npy,
            "mpdata": flat_formats.import_mpdata,
            "npy": flat_formats.import_npy,
        }[fmt]
    if fmt == "gislr":
        from islr.datasets.gislr import import_gislr

        return import_gislr
    if fmt == "openhands":
        from islr.datasets.openhands import import_openhands

        return import_openhands
    raise DatasetError(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")


def import_format(fmt: str, src: str | Path, out: str | Path, **options) -> ImportSummary:
    """Import ``src`` of format ``fmt`` into the cache at ``out``. ``options`` are the format's
    keyword arguments (``split``, ``layout``, ``frame_layout``, ``labels``, ``image_size``...);
    ``None`` means the format's default, and an option the format does not take is an error."""
    import inspect

    function = _importer(fmt)
    accepted = inspect.signature(function).parameters
    given = {k: v for k, v in options.items() if v is not None}
    wrong = [k for k in given if k not in accepted]
    if wrong:
        names = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise DatasetError(f"{names} does not apply to the {fmt} format")
    if fmt == "npy" and "frame_layout" not in given:
        raise DatasetError(
            "the npy format needs --frame-layout (e.g. hands_pose75:xy for 75 points x (x, y)); "
            "see docs/formats.md"
        )
    return function(src, out, **given)
