"""A vocabulary that grows without retraining: signs added from a few takes, matched by embedding.

A model = the trained network (its K known signs, scored by its head) + a vocabulary of added
signs, each with its unit prototypes (one per take: the take's embedding), the embeddings of
augmented copies of its takes, and where its examples came from. Scoring (the same in the web
page's JavaScript)::

    L = log_softmax(logits)                     over the K known signs
    with a refitted head (the default: islr.inference.refit, whenever the model stores its known
    signs' training embeddings):
    z = log_softmax(W e + c)                    rows: the K known signs, then each sign of the
                                                vocabulary (its takes)
    s_j = z_j - log(sum_known exp(z))           the row of vocabulary sign j
    L_c = log(exp(L_c) + exp(s_j))              a known sign c that also got examples (row j:
                                                the signer's own version of it)
    without one (older models): nearest take
    s_j = a * max_p (e . p) + b                 an added sign j, prototypes p
    L_c = max(L_c, a * max_p (e . p) + b)       a known sign c that also got added examples
    probabilities = softmax([L ; s])            labels: known (model order), then added

So the refitted head decides whether a sign is a known or an added one (and which added one); the
classifier still decides which known one. ``a, b`` (:class:`Calibration`) put the nearest-take
scores on the head's scale; the default was chosen on INCLUDE-50 by bench/bench_fewshot.py.
The vocabulary lives beside the model (``X.onnx`` -> ``X.vocab.json``), written atomically.
Only NumPy here: the functions are pure and take embeddings, not models.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from islr.errors import InputError, ModelError, VocabularyError
from islr.landmarks import atomic_write_bytes

VOCABULARY_VERSION = 1
VOCABULARY_SUFFIX = ".vocab.json"
MAX_LABEL_CHARS = 64


@dataclass(frozen=True)
class Calibration:
    """``score = scale * cosine + bias``: an added sign's log-score beside the known signs'
    log-probabilities. The default gave the best 50-way top-1 on INCLUDE-50 with 10 signs held out
    of training and added from 1, 3 or 5 examples (bench/bench_fewshot.py, 5 choices: the best
    top-1 on the added signs while the known ones lose at most 1 point): a take must be nearly
    identical (cosine >= -bias / scale = 0.97) to outscore a confident known sign, and the small
    scale lets the head's doubt count (signs it never saw leave it unsure)."""

    scale: float = 4.0
    bias: float = -3.88

    def to_dict(self) -> dict[str, float]:
        return {"scale": float(self.scale), "bias": float(self.bias)}

    @classmethod
    def from_dict(cls, d: Any) -> Calibration:
        if d is None:
            return cls()
        try:
            return cls(float(d["scale"]), float(d["bias"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"the embedding calibration is invalid ({e!r}): {d!r}") from None


# A new sign whose prototype is at least this similar to another sign's is flagged: the two
# would be confused. A model exported with its training data carries its own threshold
# (islr.inference.enroll.duplicate_threshold: 0.88-0.90 for INCLUDE-50 models); this is the
# fallback for one exported without.
DUPLICATE_SIMILARITY = 0.9


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
    head: VocabularyHead | None = None  # refitted on each change (islr.inference.refit)

    def find(self, label: str) -> AddedSign | None:
        return next((s for s in self.signs if s.label == label), None)

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
        signs = tuple(sign if s.label == label else s for s in self.signs)
        return replace(self, signs=signs, head=None)

    def renamed(self, label: str, new: str, known: list[str]) -> Vocabulary:
        """The added sign ``label`` renamed ``new``; a known sign keeps its name."""
        new = check_label(new)
        self._require_added(label, known)
        if new != label and (new in known or self.find(new) is not None):
            raise VocabularyError(f"{new!r} is already a sign of this model; choose another name")
        signs = tuple(replace(s, label=new) if s.label == label else s for s in self.signs)
        head = None if self.head is None else self.head.renamed(label, new)
        return replace(self, signs=signs, head=head)

    def removed(self, label: str, known: list[str]) -> Vocabulary:
        """Without ``label``'s added examples (a known sign stays, with its head only)."""
        if self.find(label) is None:
            if label in known:
                raise VocabularyError(
                    f"{label!r} is a sign the model was trained on and has no added examples; "
                    "it cannot be removed"
                )
            raise UnknownSignError(f"{label!r}: no such sign in this vocabulary")
        return replace(self, signs=tuple(s for s in self.signs if s.label != label), head=None)

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
            signs = tuple(both if s.label == sign.label else s for s in result.signs)
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
                        check_label(s["label"]),
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
    """A sign's name, stripped; :class:`InputError` when empty, too long or not text."""
    if not isinstance(label, str) or not label.strip():
        raise InputError("a sign's label must be a non-empty text")
    label = label.strip()
    if len(label) > MAX_LABEL_CHARS or any(ord(c) < 32 for c in label):
        raise InputError(
            f"a sign's label must be at most {MAX_LABEL_CHARS} printable characters: {label!r}"
        )
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
    from islr.pretrained import is_pretrained_name

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


def log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def vocabulary_log_scores(
    logits: np.ndarray,
    embeddings: np.ndarray,
    vocab: Vocabulary,
    known: list[str],
    calibration: Calibration,
) -> np.ndarray:
    """Log-scores ``(B, K + added)`` whose softmax is the model's probabilities over
    ``vocab.labels(known)`` (the module docstring's rule). With no added sign: log_softmax."""
    scores = log_softmax(np.asarray(logits, dtype=np.float64))
    if not vocab.signs:
        return scores
    if vocab.head_is_current(known):
        head = vocab.head
        e = np.asarray(embeddings, dtype=np.float64)
        z = log_softmax(e @ head.weight.T.astype(np.float64) + head.bias.astype(np.float64))
        k = len(known)
        known_mass = np.logaddexp.reduce(z[:, :k], axis=1)
        index = {label: i for i, label in enumerate(known)}
        added = []
        for j, sign in enumerate(vocab.signs):
            s = z[:, k + j] - known_mass
            if sign.label in index:  # the signer's version of a known sign: more of its mass
                scores[:, index[sign.label]] = np.logaddexp(scores[:, index[sign.label]], s)
            else:
                added.append(s)
        return np.concatenate([scores, np.stack(added, axis=1)], axis=1) if added else scores
    index = {label: i for i, label in enumerate(known)}
    e = np.asarray(embeddings, dtype=np.float64)
    added = []
    for sign in vocab.signs:
        s = calibration.scale * (e @ sign.prototypes.T.astype(np.float64)).max(axis=1)
        s += calibration.bias
        if sign.label in index:
            c = index[sign.label]
            scores[:, c] = np.maximum(scores[:, c], s)
        else:
            added.append(s)
    return np.concatenate([scores, np.stack(added, axis=1)], axis=1) if added else scores


# --- the near-duplicate check -------------------------------------------------------------


@dataclass
class CheckResult:
    """How consistent a new sign's takes are and how close it comes to the model's signs."""

    label: str
    per_take: list[float]  # each take's cosine with the takes' prototype
    nearest: tuple[str, float] | None  # the most similar other sign and its similarity
    flagged: bool
    reason: str | None
    threshold: float = DUPLICATE_SIMILARITY

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "consistency": {
                "mean": float(np.mean(self.per_take)),
                "min": float(np.min(self.per_take)),
                "per_take": [float(v) for v in self.per_take],
            },
            "nearest": None
            if self.nearest is None
            else {"label": self.nearest[0], "similarity": float(self.nearest[1])},
            "flagged": self.flagged,
            "reason": self.reason,
        }


def check_new_sign(
    label: str,
    embeddings: np.ndarray,
    vocab: Vocabulary,
    known: list[str],
    known_prototypes: np.ndarray | None,
    threshold: float = DUPLICATE_SIMILARITY,
) -> CheckResult:
    """Compare the takes of ``label`` with every other sign: known ones through their mean
    training embedding (``known_prototypes`` ``(K, E)``, when the model carries them) and added
    ones through their prototypes. Flagged when the nearest is at least ``threshold`` similar."""
    label = check_label(label)
    prototype = prototype_of(embeddings, vocab.embedding_dim)
    per_take = (np.asarray(embeddings, dtype=np.float32) @ prototype).tolist()
    candidates: list[tuple[str, float]] = []
    if known_prototypes is not None:
        sims = np.asarray(known_prototypes, dtype=np.float32) @ prototype
        candidates += [(k, float(s)) for k, s in zip(known, sims, strict=True) if k != label]
    for sign in vocab.signs:
        if sign.label != label and sign.label not in known:
            candidates.append((sign.label, float((sign.prototypes @ prototype).max())))
    nearest = max(candidates, key=lambda c: c[1]) if candidates else None
    flagged = nearest is not None and nearest[1] >= threshold
    reason = None
    if flagged:
        reason = (
            f"too close to {nearest[0]!r} (similarity {nearest[1]:.3f} >= {threshold:g}): the "
            "two would be confused; record it differently, pick another sign, or force it"
        )
    return CheckResult(label, per_take, nearest, flagged, reason, threshold)


# --- what a model carries for its vocabulary ---------------------------------------------


@dataclass
class EmbeddingReference:
    """Stored with a model: its calibration, and its known signs' mean training embeddings
    (for the near-duplicate check), with what they were computed from."""

    calibration: Calibration = field(default_factory=Calibration)
    known_prototypes: np.ndarray | None = None  # (K, E) unit rows
    duplicate_similarity: float = DUPLICATE_SIMILARITY
    source: str = "default"
    # training embeddings of the known signs (n, E) and their sign indices (n,), for refitting
    # the vocabulary's head (islr.inference.refit)
    known_embeddings: np.ndarray | None = None
    known_targets: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.calibration.to_dict(),
            "duplicate_similarity": float(self.duplicate_similarity),
            "source": self.source,
            "known_prototypes": None
            if self.known_prototypes is None
            else encode_array(self.known_prototypes),
            "known_embeddings": self.known_embeddings_dict(),
        }

    def known_embeddings_dict(self) -> dict[str, Any] | None:
        if self.known_embeddings is None or self.known_targets is None:
            return None
        return {
            "embeddings": encode_int8_rows(self.known_embeddings),
            "targets": [int(t) for t in self.known_targets],
        }

    @classmethod
    def from_dict(cls, d: Any) -> EmbeddingReference:
        if not d:
            return cls()
        prototypes = d.get("known_prototypes")
        embeddings, targets = known_embeddings_from_dict(d.get("known_embeddings"))
        return cls(
            Calibration.from_dict(d.get("calibration")),
            None if prototypes is None else decode_array(prototypes),
            float(d.get("duplicate_similarity", DUPLICATE_SIMILARITY)),
            str(d.get("source", "")),
            embeddings,
            targets,
        )


def known_embeddings_from_dict(d: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """:meth:`EmbeddingReference.known_embeddings_dict` back to arrays (None, None if absent)."""
    if not d:
        return None, None
    embeddings = decode_int8_rows(d.get("embeddings"))
    try:
        targets = np.asarray(d["targets"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known-sign embeddings are unreadable ({e})") from None
    if embeddings.ndim != 2 or targets.shape != (len(embeddings),):
        raise ModelError("the model's known-sign embeddings and their signs do not match")
    return embeddings, targets


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A float array as compact JSON (float16, base64)."""
    a16 = np.ascontiguousarray(a, dtype="<f2")
    return {"dtype": "float16", "shape": list(a16.shape), "base64": base64.b64encode(a16).decode()}


def decode_array(d: Any) -> np.ndarray:
    try:
        raw = base64.b64decode(d["base64"])
        return np.frombuffer(raw, dtype="<f2").reshape(d["shape"]).astype(np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known-sign prototypes are unreadable ({e})") from None


def encode_int8_rows(a: np.ndarray) -> dict[str, Any]:
    """A float matrix as compact JSON: int8 rows, each with its float16 scale (half the size of
    :func:`encode_array`; the error, 1/254 of a row's largest value, is far below what matters
    for refitting a head)."""
    a = np.asarray(a, dtype=np.float32)
    scale = np.maximum(np.abs(a).max(axis=1), 1e-12) / 127
    scale = scale.astype("<f2").astype(np.float32)
    q = np.clip(np.round(a / np.maximum(scale, 1e-12)[:, None]), -127, 127).astype(np.int8)
    return {
        "dtype": "int8-rows",
        "shape": list(a.shape),
        "scale": encode_array(scale),
        "base64": base64.b64encode(np.ascontiguousarray(q)).decode(),
    }


def decode_int8_rows(d: Any) -> np.ndarray:
    try:
        q = np.frombuffer(base64.b64decode(d["base64"]), dtype=np.int8).reshape(d["shape"])
        scale = decode_array(d["scale"])
        return q.astype(np.float32) * scale[:, None]
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known-sign embeddings are unreadable ({e})") from None


def class_prototypes(embeddings: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit mean embedding of each class ``(n_classes, E)`` (zeros for a class without samples)."""
    out = np.zeros((n_classes, embeddings.shape[1]), dtype=np.float32)
    for c in range(n_classes):
        if (y == c).any():
            out[c] = prototype_of(embeddings[y == c], embeddings.shape[1])
    return out


def fit_calibration(
    logits: np.ndarray,
    embeddings: np.ndarray,
    y: np.ndarray,
    shots: int = 3,
    rounds: int = 3,
    seed: int = 0,
    added_weight: float = 1.0,
) -> Calibration:
    """``a, b`` that make added signs' scores comparable with the head's, fitted by simulating
    enrolment on labelled data of the known signs.

    Each known class c in turn plays an added sign: its prototype is the mean of ``shots`` of its
    samples, its column of the head is dropped, and every other sample is scored with the rule of
    :func:`vocabulary_log_scores`. ``a, b`` maximise the log-likelihood of the true labels (a grid,
    then refined), over ``rounds`` random draws of the shots; ``added_weight`` weighs the samples
    of the simulated added sign against the others.
    """
    rng = np.random.default_rng(seed)
    logits = np.asarray(logits, dtype=np.float64)
    e = np.asarray(embeddings, dtype=np.float64)
    classes = [c for c in np.unique(y) if (y == c).sum() > shots]
    cases = []  # (known log-probs without c, cosine to c's prototype, is c)
    for _ in range(rounds):
        for c in classes:
            members = np.flatnonzero(y == c)
            chosen = rng.choice(members, shots, replace=False)
            p = e[chosen].mean(axis=0)
            p /= np.linalg.norm(p)
            rest = np.setdiff1d(np.arange(len(y)), chosen)
            keep = np.arange(logits.shape[1]) != c
            known = log_softmax(logits[rest][:, keep])
            target = y[rest] - (y[rest] > c)  # index among the kept columns, -1 for c itself
            target[y[rest] == c] = -1
            cases.append((known, e[rest] @ p, target))
    known = np.concatenate([k for k, _, _ in cases])
    cosine = np.concatenate([s for _, s, _ in cases])
    target = np.concatenate([t for _, _, t in cases])

    lse_known = np.logaddexp.reduce(known, axis=1)
    known_target = known[np.arange(len(target)), np.maximum(target, 0)]
    is_added = target < 0
    weight = np.where(is_added, added_weight, 1.0)

    def log_likelihood(a: float, b: float) -> float:
        s = a * cosine + b
        chosen = np.where(is_added, s, known_target)
        return float((weight * (chosen - np.logaddexp(lse_known, s))).sum() / weight.sum())

    best = max(
        ((a, b) for a in np.arange(5, 61, 2.5) for b in np.arange(-60, 1, 1.0)),
        key=lambda ab: log_likelihood(*ab),
    )
    a, b = best
    for step in (1.0, 0.5, 0.25):
        grid = [(a + da, b + db) for da in (-step, 0, step) for db in (-step, 0, step)]
        a, b = max(grid, key=lambda ab: log_likelihood(*ab))
    return Calibration(round(float(a), 3), round(float(b), 3))
