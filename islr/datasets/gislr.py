"""Google's Isolated Sign Language Recognition corpus (Kaggle ``asl-signs``, "GISLR").

``train.csv`` has ``path, participant_id, sequence_id, sign``; each ``path`` is a parquet file
(``train_landmark_files/<participant>/<sequence>.parquet``) with one row per frame and point:
``frame, row_id, type (face | left_hand | pose | right_hand), landmark_index, x, y, z``, 543
points per frame (MediaPipe Holistic), NaN where not detected. ``participant_id`` becomes the
manifest's ``signer``. Needs pyarrow (``pip install "islr[gislr]"``).
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np

from islr.datasets.frame_layouts import gather_points, row_map
from islr.datasets.import_batch import (
    ImportFileError,
    ImportJob,
    ImportSummary,
    ProgressFn,
    run_import,
)
from islr.errors import DatasetError, MissingExtraError
from islr.landmarks.cache import ManifestEntry
from islr.landmarks.layouts import COMPONENTS, Layout, LayoutPart, get_layout
from islr.landmarks.sequence import LandmarkSequence

GISLR_CSV = "train.csv"
# The order of the 543 points in a GISLR frame (and of the blocks of its rows).
GISLR_TYPES = ("face", "left_hand", "pose", "right_hand")
GISLR_POINTS = Layout(
    "gislr543", tuple(LayoutPart(t, tuple(range(COMPONENTS[t]))) for t in GISLR_TYPES)
)
_TYPE_OFFSET = {t: GISLR_POINTS.slice(t).start for t in GISLR_TYPES}
_COLUMNS = ["frame", "type", "landmark_index", "x", "y", "z"]


def require_pyarrow(what: str = "reading GISLR parquet files"):
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "pyarrow":
            raise MissingExtraError(f"{what}: pyarrow is installed but cannot load ({e})") from e
        raise MissingExtraError(f'{what} needs pyarrow: pip install "islr[gislr]"') from None
    except ImportError as e:  # e.g. a pyarrow built for another NumPy
        raise MissingExtraError(f"{what}: pyarrow is installed but cannot load ({e})") from e
    return pq


@functools.lru_cache(maxsize=8)
def _rows_for(layout: str) -> np.ndarray:
    return row_map(GISLR_POINTS, get_layout(layout))


def read_gislr_parquet(path: str | Path, layout: str = "holistic136") -> LandmarkSequence:
    """One GISLR parquet file -> a sequence in ``layout`` (frames in order, NaN = missing)."""
    pq = require_pyarrow()
    import pyarrow as pa

    path = Path(path)
    target = get_layout(layout)
    try:
        # one thread per file: the importer already reads several files at once
        parquet = pq.ParquetFile(path, read_dictionary=["type"])
        table = parquet.read(columns=_COLUMNS, use_threads=False)
    except (pa.ArrowException, OSError, KeyError, ValueError) as e:
        raise ImportFileError(f"not a readable GISLR parquet file ({e})") from None
    if table.num_rows == 0:
        raise ImportFileError("no rows (no frames)")
    try:
        frame = table.column("frame").to_numpy()
        index = table.column("landmark_index").to_numpy()
        types = table.column("type").combine_chunks()
        if not pa.types.is_dictionary(types.type):
            types = types.dictionary_encode()
        xyz = np.stack(
            [table.column(c).to_numpy(zero_copy_only=False) for c in "xyz"], axis=-1
        ).astype(np.float32)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise ImportFileError(f"columns of the wrong type ({e})") from None
    names = types.dictionary.to_pylist()
    unknown = [n for n in names if n not in _TYPE_OFFSET]
    if unknown:
        raise ImportFileError(f"unknown landmark type {unknown[0]!r}; expected {GISLR_TYPES}")
    offsets = np.array([_TYPE_OFFSET[n] for n in names], dtype=np.int64)
    sizes = np.array([COMPONENTS[n] for n in names], dtype=np.int64)
    codes = types.indices.to_numpy(zero_copy_only=False)
    if not np.issubdtype(index.dtype, np.integer) or not np.issubdtype(frame.dtype, np.number):
        raise ImportFileError("'frame' and 'landmark_index' must be integers")
    if (index < 0).any() or (index >= sizes[codes]).any():
        raise ImportFileError("a landmark_index outside its type's points")
    frames, frame_row = np.unique(frame, return_inverse=True)
    data = np.full((len(frames), GISLR_POINTS.n_points, 3), np.nan, dtype=np.float32)
    data[frame_row, offsets[codes] + index] = xyz
    if np.isinf(data).any():
        raise ImportFileError("coordinates contain Inf")
    stored = gather_points(data, _rows_for(target.name))
    return LandmarkSequence(
        data=stored,
        layout=target.name,
        frame_indices=(frames - frames[0]).astype(np.int32),
        source=path.name,
        extractor="GISLR parquet (MediaPipe Holistic)",
        extra={"importer": "gislr"},
    )


def read_gislr_csv(csv_path: Path) -> list[dict[str, str]]:
    try:
        with csv_path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{csv_path}: cannot read ({e})") from None
    need = {"path", "sign"}
    if not rows or not need <= set(rows[0]):
        have = sorted(rows[0]) if rows else []
        raise DatasetError(
            f"{csv_path}: expected columns path, participant_id, sequence_id, sign (has {have})"
        )
    return rows


def import_gislr(
    src: str | Path,
    out: str | Path,
    split: str = "",
    layout: str = "holistic136",
    image_size: tuple[int, int] | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import a GISLR download: ``src`` is its folder (holding ``train.csv``) or the CSV itself.
    Labels are the ``sign`` column; ``participant_id`` is stored as ``signer``; sample ids are
    ``<participant>/<sequence>``. A row whose file is missing is a failure."""
    require_pyarrow()
    get_layout(layout)
    src = Path(src)
    csv_path = src / GISLR_CSV if src.is_dir() else src
    if not csv_path.is_file():
        raise DatasetError(f"{src}: no {GISLR_CSV} (give the folder of a GISLR download)")
    root = csv_path.parent
    rows = read_gislr_csv(csv_path)[:limit] if limit else read_gislr_csv(csv_path)
    jobs: list[ImportJob] = []
    missing: list[tuple[str, str]] = []
    for row in rows:
        rel = row["path"].replace("\\", "/")
        path = root / rel
        try:
            stat = path.stat()
        except OSError as e:
            missing.append((rel, f"cannot read: {e.strerror or e}"))
            continue
        jobs.append(ImportJob(rel, path, stat.st_size, stat.st_mtime, row))

    def convert(job: ImportJob) -> tuple[LandmarkSequence, ManifestEntry]:
        seq = read_gislr_parquet(job.path, layout)
        seq.source = job.source
        if image_size:
            seq.extra["image_width"], seq.extra["image_height"] = map(int, image_size)
        row = job.info
        signer = (row.get("participant_id") or "").strip()
        sequence = (row.get("sequence_id") or "").strip() or Path(job.source).stem
        sample_id = f"{signer}/{sequence}" if signer else sequence
        extra = {"importer": "gislr"}
        if signer:
            extra["signer"] = signer
        sign = (row.get("sign") or "").strip()
        entry = ManifestEntry(id=sample_id, label=sign, label_raw=sign, extra=extra)
        return seq, entry

    summary = run_import(
        "gislr", jobs, out, split, convert, progress, layout=layout, workers=workers,
        exists=lambda source: (root / source).exists(),
    )  # fmt: skip
    if missing:
        from islr.landmarks.cache import LandmarkCache

        with LandmarkCache(out).writer() as writer:
            writer.record_failures(missing)
        summary.failures.extend(missing)
        summary.found += len(missing)
    return summary
