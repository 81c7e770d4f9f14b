"""Every ``islr import`` format behind one name: :func:`import_format` and :data:`IMPORT_FORMATS`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from islr.datasets import flat_formats, gislr, importers, openhands
from islr.datasets.import_batch import ImportSummary
from islr.errors import DatasetError

IMPORT_FORMATS = {
    "include-json": "AI4Bharat INCLUDE keypoint JSON, one file per video (pose + 2 hands, x/y)",
    "pose": "pose-format .pose files (MediaPipe Holistic)",
    "seed-npy": "the seed notebook's cache: (T, 408) .npy per video + file_to_label.json",
    "mpdata": "MP_Data/<sign>/<sequence>/<frame>.npy (1662, 258 or 126 values per frame)",
    "npy": "(T, K) .npy arrays of a declared frame layout (--frame-layout)",
    "gislr": "Kaggle asl-signs (GISLR): train.csv + parquet files (needs islr[gislr])",
    "openhands": "OpenHands pose .pkl files ({keypoints (T, 75, C), confidences})",
}


IMPORTERS: dict[str, Callable[..., ImportSummary]] = {
    "include-json": importers.import_include_json,
    "pose": importers.import_pose_files,
    "seed-npy": flat_formats.import_seed_npy,
    "mpdata": flat_formats.import_mpdata,
    "npy": flat_formats.import_npy,
    "gislr": gislr.import_gislr,
    "openhands": openhands.import_openhands,
}


def import_format(fmt: str, src: str | Path, out: str | Path, **options) -> ImportSummary:
    """Import ``src`` of format ``fmt`` into the cache at ``out``. ``options`` are the format's
    keyword arguments (``split``, ``layout``, ``frame_layout``, ``labels``, ``image_size``...);
    ``None`` means the format's default, and an option the format does not take is an error."""
    if fmt not in IMPORTERS:
        raise DatasetError(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    function = IMPORTERS[fmt]
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
