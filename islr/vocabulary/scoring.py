"""Scoring with a vocabulary (the rule in :mod:`islr.vocabulary`'s docstring, the same in the
web page's JavaScript) and the near-duplicate check of a new sign."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from islr.modelfile import DUPLICATE_SIMILARITY, Calibration
from islr.vocabulary.model import Vocabulary, check_label, prototype_of


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
