"""``islr import auto``: recognise which format a file or folder of landmarks is in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from islr.errors import DatasetError

_LOOK_AT = 2000  # files looked at when scanning a folder


@dataclass
class Detection:
    """What ``src`` looks like: the format, its import options and a sentence saying why."""

    format: str
    reason: str
    options: dict = field(default_factory=dict)
    src: Path | None = None  # where to import from, if not the folder given


def _files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    return list(islice((p for p in src.rglob("*") if p.is_file()), _LOOK_AT))


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)  # header only
    except (OSError, ValueError, EOFError):
        return None


_WIDTH_GUESS = {
    150: ("hands_pose75:xy", "75 points x (x, y): pose 33, left hand, right hand"),
    225: ("hands_pose75:xyz", "75 points x (x, y, z): pose 33, left hand, right hand"),
    258: ("mp258", "MediaPipe Holistic without the face (pose 33x4, hands 2x21x3)"),
    1662: ("mp1662", "MediaPipe Holistic (pose 33x4, face 468x3, hands 2x21x3)"),
    126: ("mp126", "two hands 21x3"),
}


def detect_format(src: str | Path) -> Detection:
    """Guess the import format of ``src``; :class:`DatasetError` when nothing fits."""
    from islr.datasets.flat_formats import SEED_LABEL_FILE
    from islr.datasets.frame_layouts import MPDATA_BY_WIDTH
    from islr.datasets.gislr import GISLR_CSV

    src = Path(src)
    if not src.exists():
        raise DatasetError(f"{src}: no such file or folder")
    csv_path = src / GISLR_CSV if src.is_dir() else src
    if csv_path.suffix == ".csv" and csv_path.is_file():
        header = csv_path.open(encoding="utf-8", errors="replace").readline()
        if {"path", "sign"} <= {c.strip() for c in header.split(",")}:
            has_signer = "participant_id" in header
            return Detection(
                "gislr",
                f"{csv_path.name} with columns {header.strip()}: a GISLR (Kaggle asl-signs) "
                "download" + ("; participant_id becomes the signer" if has_signer else ""),
            )
    files = _files(src)
    by_suffix: dict[str, list[Path]] = {}
    for p in files:
        if not p.name.startswith("."):
            by_suffix.setdefault(p.suffix.lower(), []).append(p)
    npys = by_suffix.get(".npy", [])
    frames = [p for p in npys if p.stem.isdigit()]
    if frames and len(frames) >= len(npys) / 2:
        shape = _npy_shape(frames[0])
        width = shape[0] if shape and len(shape) == 1 else None
        name = MPDATA_BY_WIDTH.get(width) if width else None
        what = f"{width} values per frame ({name})" if name else f"frames of shape {shape}"
        from islr.datasets.flat_formats import find_mpdata_sequences

        root = src if src.is_dir() else src.parent
        sequences = len(find_mpdata_sequences(root))
        return Detection(
            "mpdata",
            f"MP_Data: {sequences} sequence folders of numbered frame files, {what}",
        )
    if npys:
        shape = _npy_shape(npys[0])
        label_file = None
        for folder in (src if src.is_dir() else src.parent, src.parent):
            if (folder / SEED_LABEL_FILE).is_file():
                label_file = folder / SEED_LABEL_FILE
                break
        if shape and len(shape) == 2 and shape[1] == 408 and label_file is not None:
            return Detection(
                "seed-npy",
                f"{len(npys)} (T, 408) arrays and {label_file.name}: the seed notebook's cache "
                "(pose 33x4, 2 hands 21x3, 50 face points x3)",
            )
        width = int(np.prod(shape[1:])) if shape and len(shape) in (2, 3) else None
        if width in _WIDTH_GUESS:
            frame_layout, what = _WIDTH_GUESS[width]
            return Detection(
                "npy",
                f"{len(npys)} arrays of shape {shape}: {what} (guessed from the width; check it, "
                "or give --frame-layout)",
                {"frame_layout": frame_layout},
            )
        raise DatasetError(
            f"{src}: .npy arrays of shape {shape}; give the format and --frame-layout "
            "(docs/formats.md)"
        )
    if by_suffix.get(".parquet"):
        raise DatasetError(
            f"{src}: parquet files without a {GISLR_CSV} next to them; give the GISLR folder"
        )
    if by_suffix.get(".pkl"):
        n = len(by_suffix[".pkl"])
        return Detection("openhands", f"{n} .pkl files: OpenHands pose pickles")
    if by_suffix.get(".pose"):
        return Detection("pose", f"{len(by_suffix['.pose'])} pose-format .pose files")
    jsons = [p for p in by_suffix.get(".json", []) if not p.name.startswith("label_map")]
    for path in jsons[:3]:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        if isinstance(d, dict) and "pose_x" in d and "hand1_x" in d:
            return Detection("include-json", f"{len(jsons)} INCLUDE keypoint JSON files")
    found = ", ".join(f"{len(v)} {k or '(no extension)'}" for k, v in sorted(by_suffix.items()))
    raise DatasetError(
        f"{src}: no known landmark format ({found or 'no files'}); see docs/formats.md"
    )
