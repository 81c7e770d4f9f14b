"""What a model file carries for its vocabulary of added signs: the calibration of added signs'
scores, the known signs' mean training embeddings (the near-duplicate check) and some of their
training embeddings (refitting the vocabulary's head)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from islr.errors import ModelError
from islr.modelfile.arrays import decode_array, decode_int8_rows, encode_array, encode_int8_rows


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


@dataclass
class EmbeddingReference:
    """Stored with a model: its calibration, and its known signs' mean training embeddings
    (for the near-duplicate check), with what they were computed from."""

    calibration: Calibration = field(default_factory=Calibration)
    known_prototypes: np.ndarray | None = None  # (K, E) unit rows
    duplicate_similarity: float = DUPLICATE_SIMILARITY
    source: str = "default"
    # training embeddings of the known signs (n, E) and their sign indices (n,), for refitting
    # the vocabulary's head (islr.vocabulary.fit)
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
