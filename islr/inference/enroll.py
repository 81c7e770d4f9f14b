"""Teaching a model new signs: embed a few takes, check them, add them to the vocabulary.

The glue between an :class:`~islr.inference.Engine`, landmark caches and
:mod:`islr.vocabulary` (which holds the pure parts), shared by ``islr enroll``,
``islr export --data``, the server's ``/v1/vocabulary`` and ``bench/bench_fewshot.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from islr.datasets.include import label_key
from islr.errors import DatasetError, ModelError, VocabularyError
from islr.export import onnx_bytes_from_checkpoint
from islr.features.augment import augment_sequence
from islr.features.model_input import resample
from islr.inference.engine import Engine
from islr.landmarks import LandmarkCache, ManifestEntry, atomic_write_bytes
from islr.modelfile import Calibration, EmbeddingReference
from islr.pretrained import resolve_model
from islr.vocabulary import (
    CheckResult,
    Vocabulary,
    check_new_sign,
    class_prototypes,
    known_embeddings_for_refit,
    save_vocabulary,
    vocabulary_path,
)

# augmented copies of each take embedded for the vocabulary head's refit (islr.vocabulary.fit);
# 8 beat 2 and matched 16 on INCLUDE-50 (bench/bench_fewshot.py)
TAKE_AUGMENTATIONS = 8


@dataclass
class TakeEmbeddings:
    """Takes of one sign through a model: unit embeddings ``(n, E)``, and those of
    ``TAKE_AUGMENTATIONS`` augmented copies of each ``(n * TAKE_AUGMENTATIONS, E)``."""

    embeddings: np.ndarray
    augmented: np.ndarray | None = None


def augmented_embeddings(
    engine: Engine, takes: list[np.ndarray], copies: int, seed: int = 0
) -> np.ndarray:
    """Embeddings ``(n * copies, E)`` of ``copies`` augmented copies of each take (arrays in the
    model's layout with their own frames, ``engine.prepare(..., resampled=False)``), augmented
    like the model's training data (its recipe's augmentations, ``engine.augment``: other speeds,
    sizes, angles, missing frames and hands), copy after copy of one take, then the next;
    seeded."""
    augment = engine.augment
    rng = np.random.default_rng(seed)
    batch = [
        resample(augment_sequence(take, engine.model_layout, augment, rng), engine.seq_len)
        for take in takes
        for _ in range(copies)
    ]
    out = [engine.embed_prepared(np.stack(batch[i : i + 128]).astype(np.float32))
           for i in range(0, len(batch), 128)]  # fmt: skip
    return np.concatenate(out)


def embed_takes(
    engine: Engine,
    items: list,
    copies: int = TAKE_AUGMENTATIONS,
    image_sizes: list[tuple[int, int] | None] | None = None,
) -> TakeEmbeddings:
    """:class:`TakeEmbeddings` of sequences or arrays (as :meth:`Engine.prepare` takes them)."""
    sizes = image_sizes or [None] * len(items)
    takes = [
        engine.prepare(item, size, resampled=False) for item, size in zip(items, sizes, strict=True)
    ]
    batch = np.stack([resample(t, engine.seq_len) for t in takes]).astype(np.float32)
    augmented = augmented_embeddings(engine, takes, copies) if copies else None
    return TakeEmbeddings(engine.embed_prepared(batch), augmented)


@dataclass
class EmbeddedSamples:
    """Samples of a cache through a model: their entries, logits ``(n, K)`` and embeddings."""

    entries: list[ManifestEntry]
    logits: np.ndarray
    embeddings: np.ndarray

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.entries]


def embed_entries(
    engine: Engine, cache: LandmarkCache, entries: list[ManifestEntry]
) -> EmbeddedSamples:
    """Logits and embeddings of cache entries (in batches: bounded memory)."""
    logits, embeddings = [], []
    for i in range(0, len(entries), 128):
        batch = np.stack([engine.prepare(s) for s in cache.load_many(entries[i : i + 128])])
        lg, em = engine.logits_and_embedding_batch(batch)
        logits.append(lg)
        embeddings.append(em)
    if not entries:
        dim = engine.embedding_dim or 0
        return EmbeddedSamples([], np.zeros((0, len(engine.known_labels))), np.zeros((0, dim)))
    return EmbeddedSamples(list(entries), np.concatenate(logits), np.concatenate(embeddings))


def labelled_entries(
    cache_dir: str | Path, splits: tuple[str, ...] | None
) -> tuple[LandmarkCache, list[ManifestEntry]]:
    """The labelled entries of ``splits`` (None: every split) of a cache."""
    cache = LandmarkCache(cache_dir)
    if splits is None:
        entries = cache.require_entries(None)
    else:
        entries = [e for s in splits for e in cache.require_entries(s)]
    entries = [e for e in entries if e.label]
    if not entries:
        raise DatasetError(f"{cache_dir}: no labelled samples in split(s) {splits}")
    return cache, entries


def choose_shots(
    entries: list[ManifestEntry], labels: list[str], shots: int | None, seed: int
) -> dict[str, list[ManifestEntry]]:
    """At most ``shots`` entries of each label (all when None), chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for label in labels:
        mine = sorted((e for e in entries if e.label == label), key=lambda e: e.id)
        if not mine:
            raise DatasetError(f"no samples of {label!r} in the chosen split(s)")
        if shots is not None and len(mine) > shots:
            mine = [mine[i] for i in sorted(rng.choice(len(mine), shots, replace=False))]
        chosen[label] = mine
    return chosen


def reference_from_samples(
    samples: EmbeddedSamples,
    known: list[str],
    source: str = "",
    calibration: Calibration | None = None,
    augmented: np.ndarray | None = None,
) -> EmbeddingReference:
    """What a model carries for its vocabulary, from labelled samples of its known signs (its
    training data): the known signs' prototypes, the duplicate threshold
    (:func:`duplicate_threshold`), some of the samples' embeddings and of ``augmented`` (an
    augmented copy of each sample, ``(n, E)``) for refitting the vocabulary's head
    (:func:`~islr.vocabulary.known_embeddings_for_refit`), and ``calibration`` (default:
    :class:`Calibration`'s, chosen by bench/bench_fewshot.py; fitting it on the training data by
    simulated enrolment, :func:`~islr.vocabulary.fit_calibration`, cost the known signs
    12-30 points there, because a trained sign's examples cluster far tighter than a new sign's)."""
    index = {label: i for i, label in enumerate(known)}
    labels = [known_label_for(label, known) for label in samples.labels]  # "thankyou" = "thank you"
    keep = [i for i, label in enumerate(labels) if label in index]
    if not keep:
        raise DatasetError("none of the samples has a sign the model knows")
    y = np.array([index[labels[i]] for i in keep])
    embeddings = samples.embeddings[keep]
    prototypes = class_prototypes(embeddings, y, len(known))
    threshold = duplicate_threshold(embeddings, y, prototypes)
    copies = None if augmented is None else augmented[keep]
    stored, targets = known_embeddings_for_refit(embeddings, copies, y)
    return EmbeddingReference(
        calibration or Calibration(), prototypes, threshold, source, stored, targets
    )


def reference_from_cache(
    engine: Engine, cache_dir: str | Path, splits: tuple[str, ...] = ("train",)
) -> EmbeddingReference:
    """:func:`reference_from_samples` on the labelled samples of ``splits`` of a cache (the
    model's training data)."""
    cache, entries = labelled_entries(cache_dir, splits)
    samples = embed_entries(engine, cache, entries)
    augmented = []
    for i in range(0, len(entries), 128):
        takes = [engine.prepare(s, resampled=False) for s in cache.load_many(entries[i : i + 128])]
        augmented.append(augmented_embeddings(engine, takes, 1, seed=i))
    source = f"{Path(cache_dir).name} ({'+'.join(splits)}, {len(entries)} samples)"
    return reference_from_samples(
        samples, engine.known_labels, source, augmented=np.concatenate(augmented)
    )


def duplicate_threshold(
    embeddings: np.ndarray, y: np.ndarray, prototypes: np.ndarray, quantile: float = 0.02
) -> float:
    """The similarity from which a new sign counts as a recording of an existing one: the
    ``quantile`` of the similarity between one take of a known sign and that sign's prototype
    (so about 49 in 50 takes of a known sign are flagged, on the model's training data; on
    INCLUDE-50 the validation takes of known signs agree, see README)."""
    own = np.einsum("ij,ij->i", embeddings, prototypes[y])
    return round(float(np.quantile(own, quantile)), 4)


def check_takes(
    engine: Engine, label: str, embeddings: np.ndarray, vocab: Vocabulary | None = None
) -> CheckResult:
    """The near-duplicate check of takes of ``label`` against the engine's signs (its known
    ones, and those of ``vocab``, default: its vocabulary)."""
    return check_new_sign(
        label,
        embeddings,
        engine.vocabulary if vocab is None else vocab,
        engine.known_labels,
        engine.reference.known_prototypes,
        engine.reference.duplicate_similarity,
    )


def add_takes(
    vocab: Vocabulary,
    check: CheckResult,
    takes: TakeEmbeddings,
    source: str,
    force: bool = False,
) -> Vocabulary:
    """``vocab`` with the takes added under ``check.label``; :class:`DuplicateSignError` when the
    check flagged them and ``force`` is false."""
    if check.flagged and not force:
        raise DuplicateSignError(check)
    return vocab.with_examples(check.label, takes.embeddings, source, augmented=takes.augmented)


class DuplicateSignError(VocabularyError):
    """A new sign too close to an existing one (its check says which and how close)."""

    def __init__(self, check: CheckResult):
        super().__init__(f"{check.label!r}: {check.reason}")
        self.check = check


@dataclass
class EnrolOutcome:
    """What happened to one sign's takes."""

    check: CheckResult
    added: bool
    source: str


def known_label_for(label: str, known: list[str]) -> str:
    """``label`` as the model writes it when it names a known sign (``thankyou`` and
    ``thank you`` are one sign), else ``label``."""
    by_key = {label_key(k): k for k in known}
    return by_key.get(label_key(label), label)


def enrol(
    engine: Engine,
    takes: dict[str, TakeEmbeddings],
    sources: dict[str, str],
    force: bool = False,
) -> list[EnrolOutcome]:
    """Add each label's takes to ``engine``'s vocabulary, one label after the other (so two new
    signs that are too close are flagged too); a flagged label is skipped unless ``force``. The
    head is refitted once at the end; the engine uses the result at once; nothing is written."""
    outcomes = []
    vocab = engine.vocabulary
    for label, mine in takes.items():
        result = check_takes(engine, label, mine.embeddings, vocab)
        added = force or not result.flagged
        if added:
            vocab = vocab.with_examples(
                label, mine.embeddings, sources[label], augmented=mine.augmented
            )
        outcomes.append(EnrolOutcome(result, added, sources[label]))
    engine.set_vocabulary(vocab)
    return outcomes


def write_model_with_vocabulary(model: str | Path, out: str | Path, vocab: Vocabulary) -> Path:
    """``out`` (``.onnx`` or ``.pt``) = the model ``model`` (copied, or exported to ONNX from a
    checkpoint) + ``vocab`` in ``out``'s vocabulary file; both written atomically. ``out`` may be
    the model itself (only its vocabulary changes)."""
    out = Path(out)
    source = resolve_model(model)
    if source.is_dir():
        source = source / "best.pt"
    kind = out.suffix.lower()
    if kind not in (".onnx", ".pt"):
        raise ModelError(f"{out}: a model file ends in .onnx or .pt")
    if out.exists() and out.resolve() == source.resolve():
        return save_vocabulary(vocabulary_path(out), vocab)
    if kind == source.suffix.lower():
        atomic_write_bytes(out, source.read_bytes())
    elif kind == ".onnx":
        atomic_write_bytes(out, onnx_bytes_from_checkpoint(source))
    else:
        raise ModelError(f"{out}: an ONNX model cannot become a checkpoint; give a .onnx name")
    return save_vocabulary(vocabulary_path(out), vocab)
