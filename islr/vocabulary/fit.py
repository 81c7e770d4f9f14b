"""Fitting to a model's data: the calibration of added signs' scores (:func:`fit_calibration`),
and the vocabulary's head, a linear layer over the sign embedding refitted when signs are added
(:func:`fit_head`).

Scoring an added sign by its nearest take (``a * cosine + b``) lets a sign the model never saw
lose to the known sign it resembles most: the classifier's head is confident about signs it was
not trained on. The refitted head learns the difference instead: a multinomial logistic
regression over the embedding, fitted on the model's own training embeddings (stored with the
model: :attr:`~islr.modelfile.EmbeddingReference.known_embeddings`) and the added
signs' takes, both with augmented copies (so augmentation is no cue), classes balanced. It only
decides *known or added, and which added sign*; which known sign stays the classifier's call
(:func:`~islr.vocabulary.scoring.vocabulary_log_scores`). On INCLUDE-50 with 10 signs held out
(bench/bench_fewshot.py) it added them better than the nearest take at the same cost to the known
signs (README, "Teach it new signs").
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from islr.modelfile import Calibration, EmbeddingReference
from islr.vocabulary.model import Vocabulary, VocabularyHead, prototype_of
from islr.vocabulary.scoring import log_softmax

# Added to an added sign's logit, by its number of examples (linear in between, constant beyond):
# with more examples the fit is surer of itself, and a known sign needs protecting. Chosen by
# bench/bench_fewshot.py for each k on INCLUDE-50 (the most added-sign top-1 while the known
# signs lose at most 1 point) for the default recipe's 2-model ensemble, which include50 is;
# single models of the previous recipe (no stream segments) did best with {1: 0.5, 3: -0.75,
# 5: -1.0} (README, "Teach it new signs").
ADDED_OFFSETS = {1: 0.75, 3: -0.5, 5: -0.5}


def added_offset(examples: int, offsets: dict[int, float] | None = None) -> float:
    """The logit offset of an added sign with ``examples`` examples (:data:`ADDED_OFFSETS`)."""
    table = sorted((offsets or ADDED_OFFSETS).items())
    return float(np.interp(examples, [n for n, _ in table], [o for _, o in table]))


REGULARISATION = 1.0  # scikit-learn's C


def fit_head(
    vocab: Vocabulary,
    reference: EmbeddingReference,
    known: list[str],
    offsets: dict[int, float] | None = None,
    regularisation: float = REGULARISATION,
) -> Vocabulary:
    """``vocab`` with a head fitted on ``reference``'s known-sign embeddings and its signs'
    takes (and their augmented copies), each added sign's logit offset by
    :func:`added_offset` of its number of examples (``offsets``: another table, e.g. ``{1: 0}``
    for none); without a head when it has no signs or ``reference`` no known embeddings (then
    added signs are scored by their nearest take)."""
    if not vocab.signs or reference.known_embeddings is None:
        return replace(vocab, head=None)
    from sklearn.linear_model import LogisticRegression

    # rows: the known signs (their training embeddings), then one per sign of the vocabulary
    # (its takes), in its order; a known sign with added examples has both: the examples are the
    # signer's own version of it, which may look nothing like the training videos
    rows = [*known, *(s.label for s in vocab.signs)]
    x = [np.asarray(reference.known_embeddings, dtype=np.float64)]
    y = [np.asarray(reference.known_targets, dtype=np.int64)]
    for j, sign in enumerate(vocab.signs):
        takes = [sign.prototypes] + ([sign.augmented] if sign.augmented is not None else [])
        takes = np.concatenate(takes).astype(np.float64)
        x.append(takes)
        y.append(np.full(len(takes), len(known) + j))
    x, y = np.concatenate(x), np.concatenate(y)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=regularisation, max_iter=300, class_weight="balanced")
    model.fit((x - mean) / scale, y)
    # back to raw embeddings: w . (e - mean) / scale + b = (w / scale) . e + (b - (w / scale) . mean)
    weight = np.zeros((len(rows), x.shape[1]))
    bias = np.full(len(rows), -30.0)  # a class without examples is never chosen
    for row, c in enumerate(model.classes_):
        weight[c] = model.coef_[row] / scale
        bias[c] = model.intercept_[row] - weight[c] @ mean
    for j, sign in enumerate(vocab.signs):
        bias[len(known) + j] += added_offset(sign.examples, offsets)
    head = VocabularyHead(  # rounded as the vocabulary file stores it: the same after a reload
        tuple(rows),
        np.round(weight, 6),
        np.round(bias, 6),
        tuple((s.label, s.examples) for s in vocab.signs),
    )
    return replace(vocab, head=head)


def known_embeddings_for_refit(
    embeddings: np.ndarray,
    augmented: np.ndarray | None,
    y: np.ndarray,
    per_class: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """What a model stores for :func:`fit_head`: at most ``per_class`` training embeddings of
    each known sign (the first ones) and, when given, one augmented copy of each
    (``augmented`` ``(n, E)``, row i a copy of sample i). Returns ``(embeddings, targets)``."""
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
    rows, targets = [embeddings[keep]], [y[keep]]
    if augmented is not None:
        rows.append(augmented[keep])
        targets.append(y[keep])
    return np.concatenate(rows).astype(np.float32), np.concatenate(targets).astype(np.int64)


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
