"""Importers of flat ``.npy`` landmark arrays: the seed notebook's cache, "MP_Data" folders and
plain ``(T, K)`` arrays of a declared frame layout (:mod:`islr.datasets.frame_layouts`).

Labels come from a label file (``file_to_label.json`` of the seed notebook: ``{"MVI_0001.npy":
"good evening"}``; or a CSV with ``file`` and ``label`` columns, and optionally ``signer``) or
else from the folder a file sits in.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from islr.datasets.frame_layouts import (
    MPDATA_BY_WIDTH,
    NAMED_FRAME_LAYOUTS,
    FrameLayout,
    gather_points,
    get_frame_layout,
    row_map,
    unflatten,
)
from islr.datasets.import_batch import (
    ImportFileError,
    ImportJob,
    ImportSummary,
    ProgressFn,
    file_job,
    find_inputs,
    run_import,
)
from islr.datasets.importers import INCLUDE_IMAGE_SIZE, assign_hands
from islr.errors import DatasetError
from islr.landmarks.cache import ManifestEntry
from islr.landmarks.layouts import get_layout
from islr.landmarks.sequence import LandmarkSequence

SEED_LABEL_FILE = "file_to_label.json"
ImageSize = tuple[int, int] | None


# ---- labels ------------------------------------------------------------------------------------
def read_label_file(path: str | Path) -> dict[str, dict[str, str]]:
    """``{file key: {"label": ..., "signer": ..., "split": ...}}`` from a JSON ``{file: label}``
    or a CSV with a ``file`` (or ``path``) and a ``label`` (or ``sign``) column, optionally
    ``signer`` and ``split``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read the label file ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, RecursionError, ValueError) as e:
            raise DatasetError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(d, dict) or not all(isinstance(v, str) for v in d.values()):
            raise DatasetError(f'{path}: expected a JSON object {{"file": "label", ...}}')
        return {str(k): {"label": v.strip()} for k, v in d.items()}
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise DatasetError(f"{path}: the label CSV has no rows")
    columns = set(rows[0])
    file_col = next((c for c in ("file", "path", "filename") if c in columns), None)
    label_col = next((c for c in ("label", "sign", "gloss") if c in columns), None)
    if file_col is None or label_col is None:
        raise DatasetError(
            f"{path}: a label CSV needs a 'file' and a 'label' column (has {sorted(columns)})"
        )
    out = {}
    for row in rows:
        info = {"label": (row[label_col] or "").strip()}
        for key in ("signer", "split"):
            if (row.get(key) or "").strip():
                info[key] = row[key].strip()
        out[(row[file_col] or "").strip()] = info
    return out


def _label_for(labels: dict[str, dict[str, str]], source: str) -> dict[str, str] | None:
    """A label-file row for ``source`` by relative path, file name or stem."""
    name = source.rsplit("/", 1)[-1]
    for key in (source, name, source.rsplit(".", 1)[0], name.rsplit(".", 1)[0]):
        if key in labels:
            return labels[key]
    return None


def _check_image_size(image_size: ImageSize) -> None:
    if image_size is not None and (len(image_size) != 2 or min(image_size) <= 0):
        raise DatasetError(f"image size must be two positive numbers WxH, got {image_size}")


# ---- flat arrays -> a sequence -----------------------------------------------------------------
def flat_to_sequence(
    values: np.ndarray,
    frame_layout: FrameLayout,
    store_layout: str,
    source: str,
    importer: str,
    image_size: ImageSize = None,
) -> LandmarkSequence:
    """A ``(T, K)`` array of ``frame_layout`` (or ``(T, N, C)`` with N x C = K) -> a sequence in
    ``store_layout`` (all-zero points are NaN; unordered hands sorted to the signer's left/right
    by the pose wrists)."""
    if values.ndim == 3 and frame_layout.interleave == "point":
        # (T, N, C) with N x C = K: the same values as (T, K), point by point
        values = values.reshape(values.shape[0], -1)
    if values.ndim != 2 or values.shape[1] != frame_layout.width:
        raise ImportFileError(
            f"shape {values.shape}: expected (frames, {frame_layout.width}) for frame layout "
            f"{frame_layout.describe()}"
        )
    if values.shape[0] == 0:
        raise ImportFileError("no frames")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(
        values.dtype, np.complexfloating
    ):
        raise ImportFileError(f"values of type {values.dtype}, expected numbers")
    with np.errstate(all="ignore"):
        values = values.astype(np.float32)
    if np.isinf(values).any():
        raise ImportFileError("values contain Inf (or numbers too large for float32)")
    points = frame_layout.points
    data = unflatten(values, frame_layout)
    if frame_layout.hands == "unordered" and points.has("left_hand") and points.has("right_hand"):
        pose = data[:, points.slice("pose"), :2]
        first = data[:, points.slice("left_hand")].copy()
        second = data[:, points.slice("right_hand")].copy()
        left, right = assign_hands(pose, first[..., :2], second[..., :2])
        swapped = ~np.isclose(left, first[..., :2], equal_nan=True).all(axis=(1, 2))
        data[:, points.slice("left_hand")] = np.where(swapped[:, None, None], second, first)
        data[:, points.slice("right_hand")] = np.where(swapped[:, None, None], first, second)
    target = get_layout(store_layout)
    stored = gather_points(data, row_map(points, target))
    extra = {"importer": importer, "frame_layout": frame_layout.name}
    if image_size:
        extra["image_width"], extra["image_height"] = int(image_size[0]), int(image_size[1])
    return LandmarkSequence(
        data=stored,
        layout=target.name,
        source=source,
        extractor=f"{importer} ({frame_layout.name})",
        extra=extra,
    )


def load_npy(path: Path) -> np.ndarray:
    """A ``.npy`` array without pickles; a clear error for anything else."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ImportFileError(f"not a readable .npy array ({e})") from None


def _store_layout(frame_layout: FrameLayout, layout: str | None) -> str:
    name = layout or frame_layout.store_layout
    get_layout(name)
    return name


def _labelled_entry(
    job: ImportJob, labels: dict | None, importer: str, sample_id: str
) -> ManifestEntry:
    from islr.extract.paths import label_from_path

    extra: dict = {"importer": importer}
    if labels is not None:
        row = _label_for(labels, job.source)
        if row is None:
            raise ImportFileError("not in the label file")
        label = label_raw = row["label"]
        if row.get("signer"):
            extra["signer"] = row["signer"]
        split = row.get("split", "")
    else:
        split = ""
        label, label_raw, category = label_from_path(job.source)
        if category:
            extra["category"] = category
    return ManifestEntry(id=sample_id, label=label, label_raw=label_raw, split=split, extra=extra)


# ---- seed notebook cache (isl_cache_123) -------------------------------------------------------
def find_seed_label_file(src: Path) -> Path | None:
    for folder in (src, src.parent):
        if (folder / SEED_LABEL_FILE).is_file():
            return folder / SEED_LABEL_FILE
    return None


def import_seed_npy(
    src: str | Path,
    out: str | Path,
    split: str = "",
    frame_layout: str = "seed408",
    layout: str | None = None,
    labels: str | Path | None = None,
    image_size: ImageSize = INCLUDE_IMAGE_SIZE,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import the seed notebook's cache: one ``(T, 408)`` ``.npy`` per INCLUDE video and a
    ``file_to_label.json`` (in the folder or next to it, or ``labels``). Files the label file
    does not name are failures. The videos are INCLUDE's (1920x1080)."""
    src = Path(src)
    order = get_frame_layout(frame_layout)
    store = _store_layout(order, layout)
    _check_image_size(image_size)
    label_path = (
        Path(labels) if labels else find_seed_label_file(src if src.is_dir() else src.parent)
    )
    if label_path is None:
        raise DatasetError(
            f"{src}: no {SEED_LABEL_FILE} in it or next to it; give the label file with --labels"
        )
    label_rows = read_label_file(label_path)
    root = src if src.is_dir() else src.parent
    jobs = [file_job(p, root) for p in find_inputs(src, ".npy")]

    def convert(job: ImportJob) -> tuple[LandmarkSequence, ManifestEntry]:
        entry = _labelled_entry(job, label_rows, "seed-npy", job.source.rsplit(".", 1)[0])
        values = load_npy(job.path)
        seq = flat_to_sequence(values, order, store, job.source, "seed-npy", image_size)
        return seq, entry

    return run_import(
        "seed-npy", jobs, out, split, convert, progress, layout=store, workers=workers,
        exists=lambda source: (root / source).exists(),
    )  # fmt: skip


# ---- plain (T, K) arrays -----------------------------------------------------------------------
def import_npy(
    src: str | Path,
    out: str | Path,
    frame_layout: str | FrameLayout,
    split: str = "",
    layout: str | None = None,
    labels: str | Path | None = None,
    image_size: ImageSize = None,
    interleave: str | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import ``(T, K)`` ``.npy`` files whose frames follow ``frame_layout``; labels from
    ``labels`` or the sign folder each file sits in."""
    from islr.extract.paths import sample_id_for

    src = Path(src)
    order = get_frame_layout(frame_layout, interleave)
    store = _store_layout(order, layout)
    _check_image_size(image_size)
    label_rows = read_label_file(labels) if labels else None
    root = src if src.is_dir() else src.parent
    jobs = [file_job(p, root) for p in find_inputs(src, ".npy")]

    def convert(job: ImportJob) -> tuple[LandmarkSequence, ManifestEntry]:
        entry = _labelled_entry(job, label_rows, "npy", sample_id_for(job.source))
        seq = flat_to_sequence(load_npy(job.path), order, store, job.source, "npy", image_size)
        return seq, entry

    return run_import(
        "npy", jobs, out, split, convert, progress, layout=store, workers=workers,
        exists=lambda source: (root / source).exists(),
    )  # fmt: skip


# ---- MP_Data/<sign>/<sequence>/<frame>.npy -----------------------------------------------------
_FRAME_NAME = re.compile(r"^(\d+)\.npy$")


def find_mpdata_sequences(src: Path) -> list[Path]:
    """Folders under ``src`` holding numbered frame files (``0.npy``, ``1.npy``...)."""
    if not src.is_dir():
        raise DatasetError(f"{src}: no such folder (give the MP_Data folder)")
    folders = sorted(
        {p.parent for p in src.rglob("*.npy") if _FRAME_NAME.match(p.name)}, key=lambda p: str(p)
    )
    if not folders:
        raise DatasetError(
            f"{src}: no MP_Data sequences found (expected <sign>/<sequence>/<frame>.npy)"
        )
    return folders


def _sequence_job(folder: Path, root: Path) -> ImportJob:
    frames = sorted(
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := _FRAME_NAME.match(p.name)) and p.is_file()
    )
    stats = [p.stat() for _, p in frames]
    rel = folder.relative_to(root).as_posix() if folder != root else folder.name
    return ImportJob(
        rel,
        folder,
        sum(s.st_size for s in stats),
        max((s.st_mtime for s in stats), default=0.0),
        {"frames": [p for _, p in frames], "numbers": [n for n, _ in frames]},
    )


def read_mpdata_sequence(
    frames: list[Path], frame_layout: str | None = None
) -> tuple[np.ndarray, FrameLayout]:
    """One MP_Data sequence: ``(T, K)`` values and its frame layout (from K unless given)."""
    rows = []
    for path in frames:
        try:
            values = load_npy(path)
        except ImportFileError as e:
            raise ImportFileError(f"frame {path.name}: {e}") from None
        if values.ndim != 1:
            raise ImportFileError(f"frame {path.name} has shape {values.shape}, expected (K,)")
        rows.append(values)
    widths = [len(r) for r in rows]
    if not widths:
        raise ImportFileError("no frames")
    width = max(set(widths), key=widths.count)  # the sequence's usual frame length
    odd = [(f.name, w) for f, w in zip(frames, widths, strict=True) if w != width]
    if odd:
        name, w = odd[0]
        raise ImportFileError(
            f"frame {name} has {w} values, the sequence's other frames {width}; every frame "
            "of a sequence must have the same length"
        )
    if frame_layout is None:
        name = MPDATA_BY_WIDTH.get(width)
        if name is None:
            known = ", ".join(f"{w} ({n})" for w, n in MPDATA_BY_WIDTH.items())
            raise ImportFileError(f"frames of {width} values; MP_Data frames have {known}")
        order = NAMED_FRAME_LAYOUTS[name]
    else:
        order = get_frame_layout(frame_layout)
    return np.stack(rows), order


def import_mpdata(
    src: str | Path,
    out: str | Path,
    split: str = "",
    layout: str = "holistic136",
    frame_layout: str | None = None,
    image_size: ImageSize = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import an ``MP_Data/<sign>/<sequence>/<frame>.npy`` tree: one sample per sequence
    folder, labelled by its sign folder; 1662, 258 or 126 values per frame (detected); zeros
    are not detected. The image size is not recorded in MP_Data: give ``image_size`` if known."""
    src = Path(src)
    get_layout(layout)
    _check_image_size(image_size)
    if frame_layout is not None:
        get_frame_layout(frame_layout)
    jobs = [_sequence_job(folder, src) for folder in find_mpdata_sequences(src)]

    def convert(job: ImportJob) -> tuple[LandmarkSequence, ManifestEntry]:
        values, order = read_mpdata_sequence(job.info["frames"], frame_layout)
        seq = flat_to_sequence(values, order, layout, job.source, "mpdata", image_size)
        seq.frame_indices = np.asarray(job.info["numbers"], dtype=np.int32)
        parts = job.source.split("/")
        label = parts[-2] if len(parts) >= 2 else ""
        entry = ManifestEntry(
            id=job.source, label=label, label_raw=label, extra={"importer": "mpdata"}
        )
        return seq, entry

    return run_import(
        "mpdata", jobs, out, split, convert, progress, layout=layout, workers=workers,
        exists=lambda source: (src / source).is_dir(),
    )  # fmt: skip


__all__ = [
    "SEED_LABEL_FILE",
    "find_mpdata_sequences",
    "flat_to_sequence",
    "import_mpdata",
    "import_npy",
    "import_seed_npy",
    "read_label_file",
    "read_mpdata_sequence",
]
