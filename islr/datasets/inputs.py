"""The input files a user hands to a model: a video (extracted with MediaPipe Holistic), a cached
landmark ``.npz``, a ``.pose`` file or an INCLUDE keypoint ``.json`` -> LandmarkSequence."""

from __future__ import annotations

from pathlib import Path

from islr.datasets.importers import ImportFileError, read_include_json, read_pose_file
from islr.errors import InputError, VideoError
from islr.extract import extract_video, is_video_file
from islr.extract.holistic import require_video
from islr.landmarks import LandmarkFileError, LandmarkSequence, load_sequence


def load_input(path: Path, layout: str) -> LandmarkSequence:
    """A video (extracted with MediaPipe Holistic, in ``layout``), a cached ``.npz``, a ``.pose``
    file (read in ``layout``) or an INCLUDE keypoint ``.json`` -> LandmarkSequence."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if is_video_file(path):
        require_video("islr predict on a video")
        return extract_video(path, layout=layout)
    if suffix == ".npz":
        return load_sequence(path)
    if suffix in (".pose", ".json"):
        try:
            if suffix == ".pose":
                return read_pose_file(path, layout=layout)
            return read_include_json(path)[0]
        except ImportFileError as e:
            raise LandmarkFileError(f"{path}: {e}") from None
    raise VideoError(
        f"{path}: unknown input type {suffix or '(no extension)'}; give a video, a landmark "
        ".npz from a cache, a .pose file or an INCLUDE keypoint .json"
    )
