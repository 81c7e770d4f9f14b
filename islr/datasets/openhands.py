"""OpenHands (AI4Bharat) pose files: one pickle per video, as OpenHands' loaders read them.

Established from OpenHands' public code (``openhands/datasets/pipelines/generate_pose.py`` and
``openhands/datasets/isolated/base.py``, read at github.com/AI4Bharat/OpenHands b9ccf9e): the
file sits where the video was, with ``.pkl`` for its extension, and holds a dict
``{"keypoints": (T, 75, 3) float, "confidences": (T, 75) float}``; the 75 points are MediaPipe
Holistic's pose 33, left hand 21, right hand 21 (x, y, z as MediaPipe gives them, all zeros for a
part that was not detected); confidences are the pose visibilities and 1/0 for the hands.

Not established (no release file was available to check): a reported quirk of the released
INCLUDE pose files, x stored multiplied by 1080 and y by 1920. Coordinates far outside [0, 1]
are therefore read as pixels and divided by ``pixel_scale`` (default that reported 1080x1920,
override with ``--pixel-scale WxH``); the importer says so in each sample's metadata.

Pickles can run code when loaded, so these files are read with an unpickler that only builds
plain containers and NumPy arrays.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from islr.datasets.frame_layouts import gather_points, row_map
from islr.datasets.import_batch import (
    ImportFileError,
    ImportJob,
    ImportSummary,
    ProgressFn,
    file_job,
    find_inputs,
    run_import,
)
from islr.landmarks.cache import ManifestEntry
from islr.landmarks.layouts import HANDS_POSE75, get_layout
from islr.landmarks.sequence import LandmarkSequence

REPORTED_PIXEL_SCALE = (1080, 1920)
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise ImportFileError(f"the pickle wants {module}.{name}; only NumPy arrays are read")


def load_pose_pickle(path: Path) -> dict:
    """An OpenHands pose pickle, loaded without running code from the file."""
    try:
        data = _ArraysOnly(io.BytesIO(path.read_bytes())).load()
    except ImportFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
        raise ImportFileError(f"not a readable pose pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or "keypoints" not in data:
        raise ImportFileError("not an OpenHands pose file (expected a dict with 'keypoints')")
    return data


def read_openhands_pose(
    path: str | Path,
    layout: str = "hands_pose75",
    pixel_scale: tuple[int, int] | None = REPORTED_PIXEL_SCALE,
) -> LandmarkSequence:
    """One OpenHands ``.pkl`` -> a sequence in ``layout`` (zeros are not detected)."""
    path = Path(path)
    d = load_pose_pickle(path)
    kps = np.asarray(d["keypoints"])
    if kps.ndim != 3 or kps.shape[1] != HANDS_POSE75.n_points or not 2 <= kps.shape[2] <= 4:
        raise ImportFileError(f"keypoints of shape {kps.shape}, expected (frames, 75, 2 or 3)")
    if kps.shape[0] == 0:
        raise ImportFileError("no frames")
    if not np.issubdtype(kps.dtype, np.number):
        raise ImportFileError(f"keypoints of type {kps.dtype}, expected numbers")
    xyz = np.full((kps.shape[0], 75, 3), np.nan, dtype=np.float32)
    with np.errstate(all="ignore"):
        xyz[..., : min(3, kps.shape[2])] = kps[..., :3].astype(np.float32)
    if np.isinf(xyz).any():
        raise ImportFileError("keypoints contain Inf")
    missing = (np.nan_to_num(xyz) == 0).all(axis=-1)
    xyz[missing] = np.nan
    extra = {"importer": "openhands"}
    if np.nanmax(np.abs(xyz[..., :2]), initial=0.0) > 2.0:
        if pixel_scale is None:
            raise ImportFileError(
                "coordinates look like pixels (values above 2); give --pixel-scale WxH"
            )
        xyz[..., 0] /= pixel_scale[0]
        xyz[..., 1] /= pixel_scale[1]
        extra["pixel_scale"] = list(pixel_scale)
    target = get_layout(layout)
    data = gather_points(xyz, row_map(HANDS_POSE75, target))
    return LandmarkSequence(
        data=data,
        layout=target.name,
        source=path.name,
        extractor="OpenHands pose pickle (MediaPipe Holistic)",
        extra=extra,
    )


def import_openhands(
    src: str | Path,
    out: str | Path,
    split: str = "",
    layout: str = "hands_pose75",
    pixel_scale: tuple[int, int] | None = REPORTED_PIXEL_SCALE,
    image_size: tuple[int, int] | None = (1920, 1080),
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import OpenHands pose ``.pkl`` files (INCLUDE's folder layout gives the labels, as for
    videos: ``Adjectives/1. loud/MVI_5177.pkl`` -> ``loud``). INCLUDE videos are 1920x1080."""
    from islr.extract.paths import label_from_path, sample_id_for

    src = Path(src)
    get_layout(layout)
    root = src if src.is_dir() else src.parent
    jobs = [file_job(p, root) for p in find_inputs(src, ".pkl")]

    def convert(job: ImportJob) -> tuple[LandmarkSequence, ManifestEntry]:
        seq = read_openhands_pose(job.path, layout, pixel_scale)
        seq.source = job.source
        if image_size:
            seq.extra["image_width"], seq.extra["image_height"] = map(int, image_size)
        label, label_raw, category = label_from_path(job.source)
        extra = {"importer": "openhands"}
        if category:
            extra["category"] = category
        entry = ManifestEntry(
            id=sample_id_for(job.source), label=label, label_raw=label_raw, extra=extra
        )
        return seq, entry

    return run_import(
        "openhands", jobs, out, split, convert, progress, layout=layout, workers=workers,
        exists=lambda source: (root / source).exists(),
    )  # fmt: skip
