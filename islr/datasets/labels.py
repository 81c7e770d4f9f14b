"""Labelling a cache: choose the classes, drop rare ones, set train/val/test splits.

``apply_labels`` rewrites the manifest (splits) atomically and writes ``file_to_label.json``
(sample id -> label) beside it. Dropped samples keep their files and manifest lines with split
``""``, so a later run with other options can bring them back.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from islr.datasets.include import ListMatch, label_key, match_split_lists, read_split_lists
from islr.errors import DatasetError
from islr.landmarks.cache import LandmarkCache, ManifestEntry
from islr.landmarks.sequence import atomic_write_bytes

FILE_TO_LABEL = "file_to_label.json"
SPLIT_MODES = ("auto", "keep", "stratified", "lists")


@dataclass
class LabelsConfig:
    """Options of ``islr labels``."""

    classes_file: Path | None = None
    min_samples: int = 2
    split: str = "auto"  # auto: keep splits already set, else stratified
    split_lists: Path | None = None
    list_prefix: str | None = None
    seed: int = 0
    val_frac: float = 0.2


@dataclass
class LabelsReport:
    """What ``apply_labels`` did."""

    split_mode: str
    n_samples: int
    labels: list[str]
    split_counts: dict[str, int]
    dropped_classes: dict[str, tuple[int, str]] = field(default_factory=dict)  # label -> (n, why)
    list_match: ListMatch | None = None
    file_to_label: Path | None = None


def read_class_file(path: str | Path) -> list[str]:
    """Class names, one per line (blank lines and ``#`` comments ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such class list file")
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise DatasetError(f"{path}: the class list is empty (expected one class name per line)")
    return names


def select_classes(labels: list[str], wanted: list[str]) -> set[str]:
    """The cache labels named in ``wanted`` (case, punctuation and ``N. `` prefixes ignored).

    Raises DatasetError naming every wanted class the cache does not have.
    """
    by_key: dict[str, list[str]] = {}
    for label in labels:
        by_key.setdefault(label_key(label), []).append(label)
    unknown = [w for w in wanted if label_key(w) not in by_key]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise DatasetError(
            f"{len(unknown)} class(es) in the class list are not in the cache: {shown}. "
            "Check the spelling, or run `islr info CACHE --per-label` to see the labels"
        )
    return {label for w in wanted for label in by_key[label_key(w)]}


def _class_order(label: str, n: int, seed: int) -> np.ndarray:
    # seeded per class, so a class's assignment does not depend on which other classes are present
    return np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))]).permutation(n)


def _ids_by_label(entries: list[ManifestEntry]) -> dict[str, list[str]]:
    by_label: dict[str, list[str]] = {}
    for e in entries:
        by_label.setdefault(e.label, []).append(e.id)
    return {label: sorted(ids) for label, ids in by_label.items()}


def stratified_split(entries: list[ManifestEntry], val_frac: float, seed: int) -> dict[str, str]:
    """Sample id -> ``train``/``val``, per class: about ``val_frac`` of each class in val, and
    every class with at least 2 samples in both splits. Deterministic for a seed, and a class's
    split does not depend on which other classes are present. The one stratified split of islr
    (``islr labels --split stratified`` and ``islr train --val-from-train``)."""
    if not 0.0 < val_frac < 1.0:
        raise DatasetError(
            f"the val fraction (--val-frac, --val-from-train) must be between 0 and 1, got {val_frac}"
        )
    split_of: dict[str, str] = {}
    for label, ids in _ids_by_label(entries).items():
        n_val = 0 if len(ids) < 2 else min(max(1, round(len(ids) * val_frac)), len(ids) - 1)
        for rank, i in enumerate(_class_order(label, len(ids), seed)):
            split_of[ids[i]] = "val" if rank < n_val else "train"
    return split_of


def stratified_folds(entries: list[ManifestEntry], k: int, seed: int) -> dict[str, int]:
    """Sample id -> fold ``0..k-1`` for stratified k-fold cross-validation: each class is dealt
    round-robin over the folds in a seeded order, starting at a class-dependent fold so that the
    folds' sizes stay within one sample of each other overall. Deterministic for a seed."""
    if k < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, got {k}")
    fold_of: dict[str, int] = {}
    offset = 0
    for label, ids in sorted(_ids_by_label(entries).items()):
        for rank, i in enumerate(_class_order(label, len(ids), seed)):
            fold_of[ids[i]] = (offset + rank) % k
        offset += len(ids)
    return fold_of


def entry_field(entry: ManifestEntry, name: str) -> str:
    """A manifest field of an entry by name: a column (``split``, ``source`` ...) or a key of
    its ``extra`` (``signer``); empty when absent."""
    if name != "extra" and name in ManifestEntry.__dataclass_fields__:
        value = getattr(entry, name)
    else:
        value = entry.extra.get(name, "")
    return "" if value is None else str(value)


def group_folds(entries: list[ManifestEntry], k: int, field: str, seed: int = 0) -> dict[str, int]:
    """Sample id -> fold ``0..k-1`` for group k-fold: every value of manifest ``field`` (e.g.
    ``signer``) lies in one fold only. Groups go largest first to the smallest fold (ties broken
    by a seeded order), so fold sizes stay close; ``k`` = the number of groups is leave-one-
    group-out. Deterministic for a seed."""
    if k < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, got {k}")
    members: dict[str, list[str]] = {}
    for e in entries:
        value = entry_field(e, field)
        if not value:
            raise DatasetError(
                f"sample {e.id} has no {field!r} in the manifest; group folds need it on every "
                f"sample (for signers: `islr signers CACHE`)"
            )
        members.setdefault(value, []).append(e.id)
    if len(members) < k:
        raise DatasetError(
            f"{len(members)} distinct {field!r} value(s) cannot fill {k} folds; use --folds "
            f"{len(members)} or fewer"
        )
    tie = {g: int(r) for g, r in zip(sorted(members), np.random.default_rng(seed).permutation(len(members)), strict=True)}  # fmt: skip
    sizes = [0] * k
    fold_of: dict[str, int] = {}
    for group in sorted(members, key=lambda g: (-len(members[g]), tie[g])):
        fold = min(range(k), key=lambda f: (sizes[f], f))
        sizes[fold] += len(members[group])
        for i in members[group]:
            fold_of[i] = fold
    return fold_of


def apply_labels(cache_dir: str | Path, config: LabelsConfig) -> LabelsReport:
    """Choose classes, set splits and write ``file_to_label.json`` for the cache at ``cache_dir``."""
    if config.split not in SPLIT_MODES:
        raise DatasetError(f"--split must be one of {', '.join(SPLIT_MODES)}, got {config.split!r}")
    if config.min_samples < 1:
        raise DatasetError(f"--min-samples must be at least 1, got {config.min_samples}")
    mode = "lists" if config.split_lists is not None else config.split
    if mode == "lists" and config.split_lists is None:
        raise DatasetError("--split lists needs --split-lists DIR")
    cache = LandmarkCache(cache_dir)
    present = cache.require_entries()
    present_ids = {e.id for e in present}
    labels = sorted({e.label for e in present})
    unlabelled = [e.id for e in present if not e.label]
    if len(unlabelled) == len(present):
        raise DatasetError(f"{cache.root}: no sample has a label; import or extract with labels")

    dropped: dict[str, tuple[int, str]] = {}
    counts = Counter(e.label for e in present)
    keep = {label for label in labels if label}
    if config.classes_file is not None:
        keep = select_classes(
            [label for label in labels if label], read_class_file(config.classes_file)
        )
        for label in sorted(set(labels) - keep - {""}):
            dropped[label] = (counts[label], "not in --classes")
    for label in sorted(keep):
        if counts[label] < config.min_samples:
            dropped[label] = (counts[label], f"fewer than {config.min_samples} samples")
    keep -= set(dropped)
    if not keep:
        raise DatasetError(
            f"no class is left after --classes / --min-samples {config.min_samples} "
            f"({len(dropped)} dropped)"
        )
    kept = [e for e in present if e.label in keep]

    list_match = None
    if mode == "auto":
        mode = "keep" if any(e.split for e in kept) else "stratified"
    if mode == "keep":
        split_of = {e.id: e.split for e in kept}
    elif mode == "stratified":
        split_of = stratified_split(kept, config.val_frac, config.seed)
    else:
        lists = read_split_lists(config.split_lists, config.list_prefix)
        list_match = match_split_lists(kept, lists)
        split_of = list_match.split_of

    new_entries = []
    with cache.writer() as writer:
        # re-read under the lock; entries whose file vanished keep their lines untouched
        for entry in cache.entries(check_files=False):
            if entry.id in present_ids:
                entry = replace(entry, split=split_of.get(entry.id, ""))
            new_entries.append(entry)
        writer.rewrite(new_entries)
        mapping = {e.id: e.label for e in new_entries if e.id in present_ids and e.label in keep}
        target = cache.root / FILE_TO_LABEL
        text = json.dumps(mapping, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        atomic_write_bytes(target, text.encode("utf-8"))
    split_counts = Counter(split_of.get(e.id, "") for e in kept)
    return LabelsReport(
        split_mode=mode,
        n_samples=len(kept),
        labels=sorted(keep),
        split_counts=dict(split_counts),
        dropped_classes=dropped,
        list_match=list_match,
        file_to_label=target,
    )
