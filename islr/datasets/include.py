"""INCLUDE's naming: sign folders like ``12. word``, video ids like ``MVI_5177`` and the official
split lists (``include50_train.txt``...) whose lines look like ``Adjectives/1. loud/MVI_5177.MOV``.

Sample ids and the label of a video *path* come from :mod:`islr.extract.paths` (the one home of
those rules); this module only compares names and matches cache samples to list lines.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from islr.errors import DatasetError
from islr.extract.paths import sign_name
from islr.landmarks.cache import ManifestEntry

SPLIT_NAMES = ("train", "val", "test")
_NOT_ALNUM = re.compile(r"[\W_]+")


def label_key(name: str) -> str:
    """Comparison key of a sign name: ``"46. you (plural)"``, ``"You Plural"`` and
    ``"youplural"`` (INCLUDE's JSON labels) all give ``"youplural"``."""
    return _NOT_ALNUM.sub("", sign_name(name).casefold())


def video_stem(path_or_id: str) -> str:
    """Video id of a list line or sample id: ``Adjectives/1. loud/MVI_5177.MOV`` -> ``mvi_5177``
    (case-folded, extension dropped whatever its case)."""
    name = PurePosixPath(path_or_id.replace("\\", "/").strip()).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return stem.casefold()


def sample_video_stem(entry: ManifestEntry) -> str:
    """Video id of a cache sample: ``extra["video"]`` when an importer recorded it (INCLUDE JSON
    uids are ``label_MVI_xxxx``), else the last part of the sample id."""
    video = entry.extra.get("video") if isinstance(entry.extra, dict) else None
    return video_stem(video or entry.id)


@dataclass(frozen=True)
class ListLine:
    """One line of a split list."""

    split: str
    path: str
    folder_keys: frozenset[str]  # label_key of every folder on the path (category, sign, Extra)


def read_split_lists(folder: str | Path, prefix: str | None = None) -> dict[str, list[ListLine]]:
    """The ``{prefix}_{train,val,test}.txt`` lists in ``folder`` (any that exist), by split.

    Without ``prefix``, the folder must hold lists of exactly one prefix.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such split-list folder")
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in sorted(folder.glob("*_*.txt")):
        stem, _, split = path.stem.rpartition("_")
        if split in SPLIT_NAMES:
            found[stem][split] = path
    if not found:
        raise DatasetError(
            f"{folder}: no split lists (expected files like include50_train.txt, include50_val.txt)"
        )
    if prefix is None:
        if len(found) > 1:
            raise DatasetError(
                f"{folder} holds lists for several datasets ({', '.join(sorted(found))}); "
                "choose one with --list-prefix"
            )
        prefix = next(iter(found))
    if prefix not in found:
        raise DatasetError(
            f"{folder}: no lists named {prefix}_train.txt/_val.txt/_test.txt "
            f"(found prefixes: {', '.join(sorted(found))})"
        )
    lists: dict[str, list[ListLine]] = {}
    for split, path in sorted(found[prefix].items()):
        lines = []
        for raw in path.read_text(encoding="utf-8-sig").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            folders = PurePosixPath(line.replace("\\", "/")).parts[:-1]
            lines.append(ListLine(split, line, frozenset(label_key(f) for f in folders)))
        lists[split] = lines
    return lists


@dataclass
class ListMatch:
    """How cache samples matched split-list lines."""

    split_of: dict[str, str]  # sample id -> split
    unlisted: list[str] = field(default_factory=list)  # sample ids in no list
    ambiguous: list[str] = field(default_factory=list)  # sample ids matching several lines
    missing: dict[str, list[str]] = field(default_factory=dict)  # split -> lines not in cache


def match_split_lists(entries: list[ManifestEntry], lists: dict[str, list[ListLine]]) -> ListMatch:
    """Give each sample the split of the list line with its video id.

    When several lines share the video id (INCLUDE reuses ``MVI_0003`` across signs), the line
    whose folders name the sample's label (or category) wins.
    """
    by_stem: dict[str, list[ListLine]] = defaultdict(list)
    for lines in lists.values():
        for line in lines:
            by_stem[video_stem(line.path)].append(line)
    result = ListMatch(split_of={})
    used: set[ListLine] = set()
    for entry in entries:
        candidates = by_stem.get(sample_video_stem(entry), [])
        if len(candidates) > 1:
            keys = {label_key(entry.label), label_key(entry.label_raw)} - {""}
            category = entry.extra.get("category") if isinstance(entry.extra, dict) else None
            named = [c for c in candidates if keys & c.folder_keys]
            if len(named) > 1 and category:
                named = [c for c in named if label_key(category) in c.folder_keys]
            candidates = named
        if not candidates:
            result.unlisted.append(entry.id)
        elif len({c.split for c in candidates}) > 1:
            result.ambiguous.append(entry.id)
        else:  # one line, or the same video listed twice in one split
            result.split_of[entry.id] = candidates[0].split
            used.update(candidates)
    for split, lines in lists.items():
        result.missing[split] = [line.path for line in lines if line not in used]
    return result
