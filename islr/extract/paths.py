"""Which files are videos, what their sample ids are, and which sign their folder names.

The one home of these naming rules: the extractor, the importers and the split-list matcher all
use them. Pure functions over paths; nothing here opens a video.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")

# INCLUDE numbers its sign folders: "12. word" -> "word".
_NUMBER_PREFIX = re.compile(r"^\s*\d+\s*\.\s*")


@dataclass(frozen=True)
class VideoFile:
    """A video found under the input folder. ``rel_path`` is POSIX-style, relative to the root."""

    path: Path
    rel_path: str

    @property
    def sample_id(self) -> str:
        return sample_id_for(self.rel_path)


@dataclass
class VideoListing:
    """The result of scanning an input: the videos, and the folders that could not be read."""

    root: Path
    videos: list[VideoFile]
    unreadable: list[tuple[str, str]]  # (folder relative to root, reason)
    readable_dirs: list[str]


def is_video_file(name: str | Path) -> bool:
    """True for the extensions ``islr extract`` reads, in any letter case."""
    return str(name).lower().endswith(VIDEO_EXTENSIONS)


def sample_id_for(rel_path: str) -> str:
    """Sample id of an input file (video, ``.pose``...): its path relative to the input folder,
    POSIX-style, without the extension."""
    path = PurePosixPath(rel_path.replace("\\", "/"))
    return str(path.with_suffix(""))


def sign_name(folder: str) -> str:
    """The sign a folder names: INCLUDE's ``12. loud`` -> ``loud``; other names unchanged."""
    return _NUMBER_PREFIX.sub("", folder).strip()


def label_from_path(rel_path: str) -> tuple[str, str, str]:
    """``(label, label_raw, category)`` of a video from the folders it sits in.

    INCLUDE's ``Adjectives/12. loud/MVI_1234.MOV`` gives ``("loud", "12. loud", "Adjectives")``;
    a plain ``loud/clip.mp4`` gives ``("loud", "loud", "")``; a video directly in the input folder
    gives ``("", "", "")`` (no label).
    """
    folders = PurePosixPath(rel_path.replace("\\", "/")).parts[:-1]
    if not folders:
        return "", "", ""
    # INCLUDE keeps some takes in a sub-folder (`Places/19. House/Extra/MVI_3439.MOV`): the sign
    # is the nearest numbered `N. word` folder, else the video's own folder.
    sign_at = next(
        (i for i in range(len(folders) - 1, -1, -1) if _NUMBER_PREFIX.match(folders[i])),
        len(folders) - 1,
    )
    label_raw = folders[sign_at]
    label = sign_name(label_raw)
    category = folders[sign_at - 1] if sign_at >= 1 else ""
    return label, label_raw, category


def find_videos(root: str | Path) -> VideoListing:
    """All videos under ``root`` (or ``root`` itself if it is a video file), sorted by path.

    Folders that cannot be listed (permission denied...) are returned in ``unreadable`` instead
    of stopping the scan. Raises :class:`~islr.errors.VideoError` if ``root`` does not exist.
    """
    root = Path(root)
    if root.is_file():
        return VideoListing(root.parent, [VideoFile(root, root.name)], [], [])
    if not root.is_dir():
        from islr.errors import VideoError

        raise VideoError(f"{root}: no such video file or folder")
    videos: list[VideoFile] = []
    unreadable: list[tuple[str, str]] = []
    readable: list[str] = []

    def on_error(err: OSError) -> None:
        unreadable.append((_rel_dir(root, err.filename), err.strerror or str(err)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        readable.append(_rel_dir(root, dirpath))
        for name in filenames:
            if is_video_file(name) and not name.startswith("."):
                path = Path(dirpath) / name
                videos.append(VideoFile(path, path.relative_to(root).as_posix()))
    videos.sort(key=lambda v: v.rel_path)
    return VideoListing(root, videos, unreadable, readable)


def _rel_dir(root: Path, path: str | os.PathLike) -> str:
    rel = Path(path).relative_to(root).as_posix()
    return "./" if rel == "." else rel + "/"
