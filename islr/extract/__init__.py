"""Video -> landmarks: MediaPipe Holistic over one video, and the parallel, resumable batch runner.

Importing this package is cheap; MediaPipe and OpenCV load when a video is first processed.
"""

from islr.extract.holistic import extract_video, extractor_name, quiet_native_stderr
from islr.extract.paths import (
    VIDEO_EXTENSIONS,
    VideoFile,
    find_videos,
    is_video_file,
    label_from_path,
    sample_id_for,
    sign_name,
)
from islr.extract.runner import (
    ExtractInterrupted,
    ExtractProgress,
    ExtractSummary,
    default_workers,
    extract_folder,
)

__all__ = [
    "VIDEO_EXTENSIONS",
    "ExtractInterrupted",
    "ExtractProgress",
    "ExtractSummary",
    "VideoFile",
    "default_workers",
    "extract_folder",
    "extract_video",
    "extractor_name",
    "find_videos",
    "is_video_file",
    "label_from_path",
    "quiet_native_stderr",
    "sample_id_for",
    "sign_name",
]
