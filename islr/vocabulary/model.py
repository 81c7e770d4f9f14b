"""The vocabulary's data model (added signs, their takes and the refitted head) and its file
beside the model (``X.onnx`` -> ``X.vocab.json``, written atomically). Only NumPy."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from islr.errors import InputError, ModelError, VocabularyError
from islr.landmarks import atomic_write_bytes
from islr.landmarks.labels import LabelError, label_lookup_key, normalise_label
from islr.modelfile import decode_array, encode_array
from islr.pretrained import is_pretrained_name

VOCABULARY_VERSION = 1
VOCABULARY_SUFFIX = ".vocab.json"


@dataclass(frozen=True)
class AddedSign:
    """A sign of the vocabulary: its unit prototypes ``(P, E)`` and where its examples came from."""

    label: str
    prototypes: np.ndarray
    examples: int
    provenance: tuple[dict[str, Any], ...] = ()
    # unit embeddings of augmented copies of the takes (n_aug per take), for the refitted head
    augmented: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "label": self.label,
            "prototypes": [[round(float(v), 6) for v in p] for p in self.prototypes],
            "examples": int(self.examples),
            "provenance": [dict(p) for p in self.provenance],
        }
        if self.augmented is not None:
            d["augmented"] = encode_array(self.augmented)
        return d

    def with_more(self, other: AddedSign) -> AddedSign:
        """This sign's examples and ``other``'s together."""
        augmented = None
        if self.augmented is not None and other.augmented is not None:
            augmented = np.concatenate([self.augmented, other.augmented])
        return AddedSign(
            self.label,
            np.concatenate([self.prototypes, other.prototypes]),
            self.examples + other.examples,
            (*self.provenance, *other.provenance),
            augmented,
        )


@dataclass(frozen=True)
class VocabularyHead:
    """A linear layer over the embedding, refitted whenever the vocabulary changes: logits
    ``weight @ e + bias`` over ``labels`` (known signs in model order, then added ones). It
    decides known-or-added and which added sign (see the module docstring); ``fitted_on`` names
    the examples it was fitted on, ``(label, examples)`` per added sign, to tell when it is out
    of date."""

    labels: tuple[str, ...]
    weight: np.ndarray  # (len(labels), E) float64, 6 decimals (as the file stores them)
    bias: np.ndarray  # (len(labels),)
    fitted_on: tuple[tuple[str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "weight": [[round(float(v), 6) for v in row] for row in self.weight],
            "bias": [round(float(v), 6) for v in self.bias],
            "fitted_on": [[label, int(n)] for label, n in self.fitted_on],
        }

    @classmethod
    def from_dict(cls, d: Any, dim: int) -> VocabularyHead:
        labels = tuple(str(label) for label in d["labels"])
        weight = np.asarray(d["weight"], dtype=np.float64)
        bias = np.asarray(d["bias"], dtype=np.float64)
        if weight.shape != (len(labels), dim) or bias.shape != (len(labels),):
            raise ValueError(f"head: weight must be {len(labels)} x {dim}, bias {len(labels)}")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError("head: weights must be finite")
        fitted_on = tuple((str(label), int(n)) for label, n in d["fitted_on"])
        return cls(labels, weight, bias, fitted_on)

    def renamed(self, label: str, new: str) -> VocabularyHead:
        return replace(
            self,
            labels=tuple(new if x == label else x for x in self.labels),
            fitted_on=tuple((new if x == label else x, n) for x, n in self.fitted_on),
        )


@dataclass(frozen=True)
class Vocabulary:
    """The added signs of a model, in the order they were added (immutable: each change returns
    a new vocabulary, so a server swaps it in one assignment)."""

    embedding_dim: int
    signs: tuple[AddedSign, ...] = ()
    head: VocabularyHead | None = None  # refitted on each change (islr.vocabulary.fit)

    def find(self, label: str) -> AddedSign | None:
        """The sign stored as ``label``, or else as its normalised form (a label stored before
        the normalisation, or typed another way: NFD ``café``, surrounding spaces)."""
        exact = next((s for s in self.signs if s.label == label), None)
        if exact is not None or not isinstance(label, str):
            return exact
        key = label_lookup_key(label)
        return next((s for s in self.signs if label_lookup_key(s.label) == key), None)

    def added_labels(self, known: list[str]) -> list[str]:
        """Labels the vocabulary adds to ``known`` (the signs that are not known ones)."""
        known_set = set(known)
        return [s.label for s in self.signs if s.label not in known_set]

    def labels(self, known: list[str]) -> list[str]:
        """Every label the model scores: known (model order), then added."""
        return [*known, *self.added_labels(known)]

    def head_is_current(self, known: list[str]) -> bool:
        """Whether :attr:`head` was fitted on exactly these signs and examples."""
        return (
            self.head is not None
            and self.head.labels == (*known, *(s.label for s in self.signs))
            and self.head.fitted_on == tuple((s.label, s.examples) for s in self.signs)
        )

    def with_examples(
        self,
        label: str,
        embeddings: np.ndarray,
        source: str,
        added: str | None = None,
        augmented: np.ndarray | None = None,
    ) -> Vocabulary:
        """A vocabulary where ``label`` has the takes ``embeddings`` ``(n, E)`` as more
        prototypes (a new sign, or more examples of an existing one), and ``augmented``, the
        embeddings of augmented copies of the takes, for the head's refit."""
        label = check_label(label)
        takes = unit_rows(embeddings, self.embedding_dim)
        if augmented is not None:  # at the precision the vocabulary file keeps them
            augmented = unit_rows(augmented, self.embedding_dim).astype(np.float16)
            augmented = augmented.astype(np.float32)
        record = {"source": str(source), "added": added or now_iso(), "examples": len(takes)}
        sign = AddedSign(label, takes, len(takes), (record,), augmented)
        old = self.find(label)
        if old is None:
            return replace(self, signs=(*self.signs, sign), head=None)
        sign = old.with_more(sign)
        signs = tuple(sign if s is old else s for s in self.signs)
        return replace(self, signs=signs, head=None)

    def renamed(self, label: str, new: str, known: list[str]) -> Vocabulary:
        """The added sign ``label`` renamed ``new``; a known sign keeps its name."""
        new = check_label(new)
        self._require_added(label, known)
        sign = self.find(label)
        assert sign is not None
        other = self.find(new)
        if new in known or (other is not None and other is not sign):
            raise VocabularyError(f"{new!r} is already a sign of this model; choose another name")
        signs = tuple(replace(s, label=new) if s is sign else s for s in self.signs)
        head = None if self.head is None else self.head.renamed(sign.label, new)
        return replace(self, signs=signs, head=head)

    def removed(self, label: str, known: list[str]) -> Vocabulary:
        """Without ``label``'s added examples (a known sign stays, with its head only)."""
        sign = self.find(label)
        if sign is None:
            if label in known:
                raise VocabularyError(
                    f"{label!r} is a sign the model was trained on and has no added examples; "
                    "it cannot be removed"
                )
            raise UnknownSignError(f"{label!r}: no such sign in this vocabulary")
        return replace(self, signs=tuple(s for s in self.signs if s is not sign), head=None)

    def _require_added(self, label: str, known: list[str]) -> None:
        if label in known:
            raise VocabularyError(
                f"{label!r} is a sign the model was trained on: it keeps its name"
            )
        if self.find(label) is None:
            raise UnknownSignError(f"{label!r}: no such sign in this vocabulary")

    def merged(self, other: Vocabulary) -> Vocabulary:
        """This vocabulary plus ``other``'s signs (a sign of both gets both's prototypes)."""
        if other.embedding_dim != self.embedding_dim:
            raise VocabularyError(
                f"the vocabulary has {other.embedding_dim}-d embeddings; this model's are "
                f"{self.embedding_dim}-d (it was made for another model)"
            )
        result = self
        for sign in other.signs:
            old = result.find(sign.label)
            if old is None:
                result = replace(result, signs=(*result.signs, sign), head=None)
                continue
            both = old.with_more(sign)
            signs = tuple(both if s is old else s for s in result.signs)
            result = replace(result, signs=signs, head=None)
        return result

    def to_dict(self) -> dict[str, Any]:
        d = {
            "version": VOCABULARY_VERSION,
            "embedding_dim": int(self.embedding_dim),
            "signs": [s.to_dict() for s in self.signs],
        }
        if self.head is not None:
            d["head"] = self.head.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "the vocabulary") -> Vocabulary:
        """Parse and check a vocabulary file's JSON; :class:`VocabularyError` when broken."""
        try:
            if d.get("version") != VOCABULARY_VERSION:
                raise ValueError(f"version {d.get('version')!r}, expected {VOCABULARY_VERSION}")
            dim = int(d["embedding_dim"])
            signs = []
            for s in d["signs"]:
                prototypes = np.asarray(s["prototypes"], dtype=np.float32)
                if prototypes.ndim != 2 or prototypes.shape[1] != dim or not len(prototypes):
                    raise ValueError(f"{s['label']!r}: prototypes must be a list of {dim} floats")
                if not np.isfinite(prototypes).all():
                    raise ValueError(f"{s['label']!r}: prototypes must be finite")
                prototypes /= np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
                provenance = tuple(dict(p) for p in s.get("provenance", []))
                augmented = None
                if s.get("augmented") is not None:
                    augmented = decode_array(s["augmented"])
                    if augmented.ndim != 2 or augmented.shape[1] != dim:
                        raise ValueError(f"{s['label']!r}: augmented must be n x {dim}")
                signs.append(
                    AddedSign(
                        _stored_label(s["label"]),
                        prototypes,
                        int(s["examples"]),
                        provenance,
                        augmented,
                    )  # fmt: skip
                )
            head = None if d.get("head") is None else VocabularyHead.from_dict(d["head"], dim)
        except (AttributeError, KeyError, TypeError, ValueError, InputError, ModelError) as e:
            raise VocabularyError(f"{where}: not a valid vocabulary file ({e})") from None
        if len({s.label for s in signs}) != len(signs):
            raise VocabularyError(f"{where}: a label appears twice")
        return cls(dim, tuple(signs), head)


class UnknownSignError(VocabularyError):
    """A sign that the vocabulary does not have."""


def check_label(label: Any) -> str:
    """A new sign's name in its one normalised form (:func:`islr.landmarks.labels.
    normalise_label`); :class:`InputError` saying what is wrong with it."""
    try:
        return normalise_label(label)
    except LabelError as e:
        raise InputError(str(e)) from None


def _stored_label(label: Any) -> str:
    """A label read from a vocabulary file, kept as written (one stored before the
    normalisation must stay usable, and removable, by its exact text)."""
    if not isinstance(label, str) or not label:
        raise InputError("a sign's label must be a non-empty text")
    return label


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def unit_rows(embeddings: np.ndarray, dim: int) -> np.ndarray:
    """Embeddings ``(n, dim)``, each scaled to unit length."""
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2 or e.shape[1] != dim or len(e) == 0 or not np.isfinite(e).all():
        raise InputError(f"expected at least one finite {dim}-d embedding, got shape {e.shape}")
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def prototype_of(embeddings: np.ndarray, dim: int) -> np.ndarray:
    """The unit mean of embeddings ``(n, dim)``."""
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2 or e.shape[1] != dim or len(e) == 0:
        raise InputError(f"expected at least one {dim}-d embedding, got shape {e.shape}")
    mean = e.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def vocabulary_path(model: str | Path) -> Path:
    """Where a model's vocabulary lives: ``X.onnx`` / ``X.pt`` -> ``X.vocab.json``; a run folder
    -> its ``best.vocab.json``; a shipped model's name (``include50``) -> ``./include50.vocab.json``
    (never inside the installed package)."""
    if is_pretrained_name(model):
        return Path(f"{model}{VOCABULARY_SUFFIX}")
    model = Path(model)
    if model.is_dir():
        model = model / "best.pt"
    return model.with_name(model.stem + VOCABULARY_SUFFIX)


def load_vocabulary(path: str | Path, embedding_dim: int) -> Vocabulary:
    """The vocabulary in ``path`` (an empty one when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return Vocabulary(embedding_dim)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VocabularyError(f"{path}: not a readable vocabulary file ({e})") from None
    vocab = Vocabulary.from_dict(d, str(path))
    if vocab.embedding_dim != embedding_dim:
        raise VocabularyError(
            f"{path}: made for {vocab.embedding_dim}-d embeddings, the model's are "
            f"{embedding_dim}-d (it belongs to another model)"
        )
    return vocab


def save_vocabulary(path: str | Path, vocab: Vocabulary) -> Path:
    """Write ``vocab`` to ``path`` atomically."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(vocab.to_dict(), indent=1) + "\n").encode())
    return path
