"""The page's scoring of added signs and its take cutting (islr/serving/static/pipeline.js), in Node.

Fast (no browser): pipeline.js's ``scoreWithVocabulary`` against the server's
:func:`islr.vocabulary.vocabulary_log_scores` on the same numbers (single-model logits,
an ensemble's log-probabilities, added signs with several prototypes, a known sign with added
examples, none added), and ``cutTake`` on recorded times. Skips when Node is missing (fails
under CI=true).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_browser_pipeline import run_js

from islr.modelfile import Calibration
from islr.vocabulary import (
    AddedSign,
    Vocabulary,
    log_softmax,
    vocabulary_log_scores,
)

KNOWN = ["a", "b", "c", "d", "e", "f"]
DIM = 16


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.normal(size=(n, DIM))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def served(vocab: Vocabulary, calibration: Calibration, known: list[str]) -> dict:
    """The GET /v1/vocabulary answer's fields the page scores with."""
    signs = [{"label": k, "kind": "known", "examples": 0} for k in known if vocab.find(k) is None]
    for sign in vocab.signs:
        d = sign.to_dict()
        signs.append({**d, "kind": "known" if sign.label in known else "added"})
    head = vocab.head.to_dict() if vocab.head_is_current(known) else None
    return {
        "calibration": calibration.to_dict(),
        "embedding_dim": DIM,
        "signs": signs,
        "head": head,
    }


def with_fitted_head(vocab: Vocabulary, rng: np.random.Generator) -> Vocabulary:
    """``vocab`` with a head refitted on made-up training embeddings of the known signs."""
    from islr.modelfile import EmbeddingReference
    from islr.vocabulary import fit_head

    centres = unit_rows(rng, len(KNOWN))
    samples = np.repeat(centres, 8, axis=0) + rng.normal(scale=0.3, size=(8 * len(KNOWN), DIM))
    reference = EmbeddingReference(
        known_embeddings=samples / np.linalg.norm(samples, axis=1, keepdims=True),
        known_targets=np.repeat(np.arange(len(KNOWN)), 8),
    )
    fitted = fit_head(vocab, reference, KNOWN)
    assert fitted.head_is_current(KNOWN)
    return fitted


def js_scores(tmp_path: Path, cases: list[dict]) -> list[dict]:
    return run_js(
        tmp_path,
        f"return {json.dumps(cases)}.map((c) => "
        "P.scoreWithVocabulary(c.logits, c.embedding, c.known, c.vocabulary));",
    )


def python_probs(logits, embedding, vocab, calibration) -> tuple[list[str], np.ndarray]:
    scores = vocabulary_log_scores(
        np.asarray([logits]), np.asarray([embedding]), vocab, KNOWN, calibration
    )[0]
    e = np.exp(scores - scores.max())
    return vocab.labels(KNOWN), e / e.sum()


@pytest.mark.parametrize("head", [False, True], ids=["nearest-take", "refitted-head"])
@pytest.mark.parametrize("ensemble", [False, True], ids=["logits", "ensemble-log-probs"])
def test_js_scoring_matches_python(tmp_path: Path, ensemble: bool, head: bool) -> None:
    rng = np.random.default_rng(3)
    calibration = Calibration(scale=23.5, bias=-19.25)
    protos = unit_rows(rng, 4)
    # rounded as GET /v1/vocabulary serves them (6 decimals), the same numbers on both sides
    vocab = Vocabulary(
        DIM,
        (
            AddedSign("new-1", protos[:2].round(6), 6),  # two enrolments: two prototypes
            AddedSign("c", protos[2:3].round(6), 3),  # a known sign with added examples
            AddedSign("new-2", protos[3:].round(6), 3),
        ),
    )
    if head:
        vocab = with_fitted_head(vocab, rng)
    empty = Vocabulary(DIM)
    cases, expected = [], []
    for i in range(8):
        logits = rng.normal(scale=3.0, size=len(KNOWN))
        if ensemble:
            logits = log_softmax(logits)  # an ensemble's output: already log-probabilities
        # embeddings near a prototype (recognised) or anywhere (a known sign wins)
        near = protos[i % 4] + rng.normal(scale=0.05 if i < 4 else 3.0, size=DIM)
        embedding = near / np.linalg.norm(near)
        for v in (vocab, empty):
            cases.append(
                {
                    "logits": logits.tolist(),
                    "embedding": embedding.tolist(),
                    "known": KNOWN,
                    "vocabulary": served(v, calibration, KNOWN),
                }
            )
            expected.append(python_probs(logits, embedding, v, calibration))
    got = js_scores(tmp_path, cases)
    winners = set()
    for js, (labels, probs) in zip(got, expected, strict=True):
        assert js["labels"] == labels
        np.testing.assert_allclose(js["probs"], probs, rtol=1e-9, atol=1e-12)
        winners.add(labels[int(np.argmax(probs))])
    # the cases exercise added signs, the known sign with examples and plain known signs
    assert {"new-1", "new-2", "c"} <= winners and winners - {"new-1", "new-2", "c"}


def test_js_scoring_without_added_signs_is_the_classifiers_softmax(tmp_path: Path) -> None:
    logits = [1.5, -0.25, 3.0, 0.0, 2.0, -4.0]
    got = run_js(
        tmp_path,
        f"const l = {json.dumps(logits)}; const k = {json.dumps(KNOWN)};"
        "return [P.scoreWithVocabulary(l, null, k, null), "
        "P.scoreWithVocabulary(l, null, k, {signs: [{label: 'a', kind: 'known'}]}), P.softmax(l)];",
    )
    for scored in got[:2]:
        assert scored["labels"] == KNOWN
        np.testing.assert_allclose(scored["probs"], got[2], rtol=1e-12)


def test_js_scoring_refuses_what_it_cannot_score(tmp_path: Path) -> None:
    vocabulary = {
        "calibration": {"scale": 25, "bias": -20},
        "signs": [{"label": "x", "kind": "added", "prototypes": [[1, 0, 0]]}],
    }
    got = run_js(
        tmp_path,
        f"const v = {json.dumps(vocabulary)}; const k = ['a', 'b'];\n"
        "const error = (f) => { try { f(); return null; } catch (e) { return e.message; } };\n"
        "return [error(() => P.scoreWithVocabulary([0, 1], null, k, v)),\n"
        "        error(() => P.scoreWithVocabulary([0, 1], [1, 0], k, v)),\n"
        "        error(() => P.scoreWithVocabulary([0, 1, 2], [1, 0, 0], k, v)),\n"
        "        error(() => P.scoreWithVocabulary([0, 1], [1, 0, 0], k, {...v, calibration: null}))];",
    )
    no_embedding, wrong_dim, wrong_count, no_calibration = got
    assert "no embedding output" in no_embedding
    assert "3-d prototype for a 2-d embedding" in wrong_dim
    assert "3 logits for 2 known signs" in wrong_count
    assert "no calibration" in no_calibration


def test_cut_take_prefers_the_segmenters_segment(tmp_path: Path) -> None:
    times = [round(0.1 * i, 3) for i in range(40)]  # a 4 s recording at 10 fps
    hands = [10 <= i < 30 for i in range(40)]
    got = run_js(
        tmp_path,
        f"const t = {json.dumps(times)}; const h = {json.dumps(hands)};\n"
        "return [\n"
        # two segments in the window [1, 3]: the one overlapping it most
        "  P.cutTake(t, h, [{start: 0.2, end: 1.2}, {start: 1.5, end: 2.6}], 1, 3),\n"
        # a segment that started during the countdown still counts (it overlaps the window)
        "  P.cutTake(t, h, [{start: 0.6, end: 1.4}], 1, 3),\n"
        # none: the frames with hands inside the window
        "  P.cutTake(t, h, [], 1.5, 3.5),\n"
        # a segment entirely outside the window is not this take's
        "  P.cutTake(t, h.map(() => false), [{start: 3.6, end: 3.9}], 1, 3),\n"
        "];",
    )
    best, early, by_hands, nothing = got
    assert best["source"] == "segmenter" and (best["start"], best["end"]) == (1.5, 2.6)
    assert best["indices"] == list(range(15, 27))
    assert early["source"] == "segmenter" and early["indices"] == list(range(6, 15))
    assert by_hands["source"] == "hands" and by_hands["indices"] == list(range(15, 30))
    assert nothing == {"indices": [], "start": None, "end": None, "source": "none"}
