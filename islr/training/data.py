"""Samples for training: read from the cache once, prepared once, batched with augmentation."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from islr.datasets.labels import stratified_split
from islr.errors import DatasetError
from islr.features import AugmentConfig, augment_sequence, prepare_model_input, resample
from islr.features.augment import made_up_non_sign
from islr.landmarks import LandmarkCache, Layout, ManifestEntry


@dataclass
class SampleSet:
    """Prepared samples of one split: raw model input ``(T_i, N, C)`` each, and label indices."""

    ids: list[str]
    arrays: list[np.ndarray]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class TrainingData:
    layout: str
    n_coords: int
    labels: list[str]
    train: SampleSet
    val: SampleSet | None
    file_to_label: dict[str, str]
    has_z: bool = True  # False when z is missing everywhere (INCLUDE's keypoints have no z)


def _prepare(cache: LandmarkCache, entries: list[ManifestEntry], layout: str, n_coords: int):
    seqs = cache.load_many(entries)
    return [prepare_model_input(s, layout, None, n_coords) for s in seqs]


def load_training_data(
    cache_dir: str,
    train_split: str = "train",
    val_split: str = "val",
    val_from_train: float = 0.0,
    seed: int = 0,
    label_file: str | Path | None = None,
    split_of: dict[str, str] | None = None,
) -> TrainingData:
    """Train/val samples of a cache by the manifest's split (or a stratified split of train).

    ``label_file`` (JSON ``{sample id: label}``, as ``file_to_label.json``) relabels the cache:
    only the samples it names are used, with its labels. ``split_of`` (sample id -> split name)
    replaces the manifest's splits, e.g. for a cross-validation fold; samples it does not name
    are left out.
    """
    cache = LandmarkCache(cache_dir)
    all_entries = cache.require_entries()
    if label_file is not None:
        all_entries = relabel(all_entries, read_label_file(label_file), cache_dir)
    if split_of is not None:
        all_entries = [replace(e, split=split_of[e.id]) for e in all_entries if e.id in split_of]
    train = [e for e in all_entries if e.split == train_split and e.label]
    val = [e for e in all_entries if e.split == val_split and e.label]
    if not train:
        splits = Counter(e.split or "(none)" for e in all_entries)
        raise DatasetError(
            f"{cache_dir}: no labelled samples in split {train_split!r} (splits: {dict(splits)}); "
            "set splits with `islr labels CACHE --split stratified`"
        )
    if val_from_train > 0:
        held_out = stratified_split(train, val_from_train, seed)
        val = [e for e in train if held_out[e.id] == "val"]
        train = [e for e in train if held_out[e.id] == "train"]
    labels = sorted({e.label for e in train})
    if len(labels) < 2:
        raise DatasetError(
            f"{cache_dir}: training needs at least 2 classes, found {len(labels)} ({labels})"
        )
    layouts = Counter(e.layout for e in train + val)
    if len(layouts) > 1:
        raise DatasetError(f"{cache_dir}: samples of several layouts {dict(layouts)}; use one")
    layout = next(iter(layouts))
    unknown_val = [e for e in val if e.label not in set(labels)]
    if unknown_val:
        names = sorted({e.label for e in unknown_val})
        raise DatasetError(f"{cache_dir}: val has classes that train lacks: {names[:10]}")
    first = cache.load(train[0])
    n_coords = first.n_coords
    index = {name: i for i, name in enumerate(labels)}

    def sample_set(entries: list[ManifestEntry]) -> SampleSet:
        return SampleSet(
            [e.id for e in entries],
            _prepare(cache, entries, layout, n_coords),
            np.array([index[e.label] for e in entries], dtype=np.int64),
        )

    train_set = sample_set(train)
    has_z = n_coords > 2 and any(not np.isnan(a[..., 2]).all() for a in train_set.arrays)
    return TrainingData(
        layout=layout,
        n_coords=n_coords,
        labels=labels,
        train=train_set,
        val=sample_set(val) if val else None,
        file_to_label={e.id: e.label for e in train + val},
        has_z=has_z,
    )


def read_label_file(path: str | Path) -> dict[str, str]:
    """``{sample id: label}`` from a JSON file, with clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such label file")
    try:
        mapping = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in mapping.items()
    ):
        raise DatasetError(f"{path}: expected a JSON object {{sample id: label}} of strings")
    if not mapping:
        raise DatasetError(f"{path}: the label file is empty")
    return mapping


def relabel(
    entries: list[ManifestEntry], mapping: dict[str, str], cache_dir: str | Path
) -> list[ManifestEntry]:
    """The entries named in ``mapping``, labelled by it; names the cache lacks are an error."""
    by_id = {e.id: e for e in entries}
    missing = sorted(set(mapping) - set(by_id))
    if missing:
        raise DatasetError(
            f"the label file names {len(missing)} samples that {cache_dir} does not hold "
            f"(e.g. {missing[:5]}); check the cache folder or regenerate the label file"
        )
    return [replace(by_id[i], label=label) for i, label in mapping.items()]


def make_batch(
    arrays: list[np.ndarray],
    seq_len: int,
    layout: str,
    augment: AugmentConfig | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Augment (if given) and resample each sample, stack: ``(B, seq_len, N, C)`` float32."""
    out = []
    for a in arrays:
        if augment is not None:
            a = augment_sequence(a, layout, augment, rng)
        out.append(resample(a, seq_len))
    return np.stack(out).astype(np.float32, copy=False)


def make_outlier_batch(
    samples: SampleSet,
    n: int,
    seq_len: int,
    layout: Layout,
    augment: AugmentConfig | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` made-up non-signs from random pairs of ``samples`` (:func:`made_up_non_sign`),
    augmented and resampled like :func:`make_batch`: outlier exposure's extra batch rows."""
    pairs = rng.integers(0, len(samples), size=(n, 2))
    outliers = [made_up_non_sign(samples.arrays[i], samples.arrays[j], layout, rng)
                for i, j in pairs]  # fmt: skip
    return make_batch(outliers, seq_len, layout.name, augment, rng)


def iterate_batches(
    samples: SampleSet, batch_size: int, rng: np.random.Generator | None
) -> Iterator[np.ndarray]:
    """Index batches, shuffled when ``rng`` is given."""
    order = rng.permutation(len(samples)) if rng is not None else np.arange(len(samples))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
