"""The vocabulary's refitted head (islr.vocabulary.fit): what it is fitted on, when it is out of
date, how it scores, and how the known signs' embeddings travel in a model."""

from __future__ import annotations

import numpy as np

from islr.modelfile import (
    EmbeddingReference,
    decode_int8_rows,
    encode_int8_rows,
    known_embeddings_from_dict,
)
from islr.vocabulary import (
    Vocabulary,
    fit_head,
    known_embeddings_for_refit,
    vocabulary_log_scores,
)

KNOWN = ["a", "b", "c"]
DIM = 8


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _world(seed: int = 0):
    """Known signs' training embeddings around 3 centres, and a new sign's centre near sign "a"
    (closer to it than the known signs' spread: the case the head is for)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(3, DIM)))
    new = _unit(centres[0] + 0.6 * _unit(rng.normal(size=DIM)))

    def around(c, n, noise=0.1):
        return _unit(c + noise * rng.normal(size=(n, DIM)))

    known = np.concatenate([around(c, 12) for c in centres])
    y = np.repeat(np.arange(3), 12)
    reference = EmbeddingReference(known_embeddings=known, known_targets=y)
    return rng, centres, new, around, reference


def test_the_head_tells_a_new_sign_from_the_known_one_it_resembles():
    rng, centres, new, around, reference = _world()
    takes = around(new, 3)
    vocab = Vocabulary(DIM).with_examples("new", takes, "3 takes", augmented=around(new, 24))
    fitted = fit_head(vocab, reference, KNOWN)
    assert fitted.head.labels == ("a", "b", "c", "new")
    assert fitted.head_is_current(KNOWN) and not vocab.head_is_current(KNOWN)

    queries_new, queries_a = around(new, 20), around(centres[0], 20)
    # the classifier is sure every one of them is "a" (it never saw "new")
    logits = np.tile([6.0, 0.0, 0.0], (20, 1))
    labels = np.array(fitted.labels(KNOWN))
    top_new = labels[vocabulary_log_scores(logits, queries_new, fitted, KNOWN, None).argmax(1)]
    top_a = labels[vocabulary_log_scores(logits, queries_a, fitted, KNOWN, None).argmax(1)]
    assert (top_new == "new").mean() >= 0.9, top_new
    assert (top_a == "a").mean() >= 0.9, top_a
    # which known sign stays the classifier's call: the head only says "known"
    scores = vocabulary_log_scores(
        np.tile([0.0, 6.0, 0.0], (20, 1)), queries_a, fitted, KNOWN, None
    )
    assert (labels[scores.argmax(1)] == "b").all()


def test_the_head_is_out_of_date_after_a_change_but_not_after_a_rename():
    rng, centres, new, around, reference = _world(1)
    vocab = Vocabulary(DIM).with_examples("new", around(new, 3), "x", augmented=around(new, 6))
    fitted = fit_head(vocab, reference, KNOWN)
    renamed = fitted.renamed("new", "hello", KNOWN)
    assert renamed.head_is_current(KNOWN) and renamed.head.labels[-1] == "hello"
    more = fitted.with_examples("new", around(new, 2), "y")
    assert more.head is None and not more.head_is_current(KNOWN)
    assert fitted.removed("new", KNOWN).head is None
    # a known sign with added examples: the head has no extra row for it
    known_more = fitted.with_examples("b", around(centres[1], 2), "z")
    assert fit_head(known_more, reference, KNOWN).head.labels == ("a", "b", "c", "new", "b")
    # the head goes through the vocabulary file
    again = Vocabulary.from_dict(renamed.to_dict())
    assert again.head_is_current(KNOWN)
    np.testing.assert_array_equal(again.head.weight, renamed.head.weight)


def test_without_known_embeddings_added_signs_are_scored_by_their_nearest_take():
    rng, centres, new, around, _ = _world(2)
    vocab = Vocabulary(DIM).with_examples("new", around(new, 3), "x")
    assert fit_head(vocab, EmbeddingReference(), KNOWN).head is None
    assert fit_head(Vocabulary(DIM), _world()[4], KNOWN).head is None  # nothing added


def test_known_embeddings_are_capped_per_sign_and_survive_int8_storage():
    rng = np.random.default_rng(3)
    e = _unit(rng.normal(size=(30, DIM)))
    y = np.repeat(np.arange(3), 10)
    stored, targets = known_embeddings_for_refit(e, e[::-1].copy(), y, per_class=4)
    assert stored.shape == (24, DIM) and np.bincount(targets).tolist() == [8, 8, 8]
    back = decode_int8_rows(encode_int8_rows(stored))
    assert np.abs(back - stored).max() < 0.005
    reference = EmbeddingReference(known_embeddings=stored, known_targets=targets)
    loaded, loaded_targets = known_embeddings_from_dict(reference.known_embeddings_dict())
    np.testing.assert_array_equal(loaded_targets, targets)
    assert np.abs(loaded - stored).max() < 0.005


def test_a_signers_own_version_of_a_known_sign_wins_once_added():
    """A signer whose "a" the classifier takes for "b": with 5 of their takes added to "a", their
    "a" is recognised, and the training videos' "b" is still "b"."""
    rng, centres, _, around, reference = _world(4)
    theirs = _unit(centres[1] + 0.7 * _unit(rng.normal(size=DIM)))  # their "a", near "b"
    vocab = Vocabulary(DIM).with_examples(
        "a", around(theirs, 5), "mine", augmented=around(theirs, 40)
    )
    fitted = fit_head(vocab, reference, KNOWN)
    assert fitted.head.labels == ("a", "b", "c", "a") and fitted.labels(KNOWN) == KNOWN
    sure_b = np.tile([0.0, 5.0, 0.0], (20, 1))
    before = vocabulary_log_scores(sure_b, around(theirs, 20), Vocabulary(DIM), KNOWN, None)
    assert (before.argmax(1) == 1).all()
    mine = vocabulary_log_scores(sure_b, around(theirs, 20), fitted, KNOWN, None)
    assert (mine.argmax(1) == 0).mean() >= 0.9
    theirs_b = vocabulary_log_scores(sure_b, around(centres[1], 20), fitted, KNOWN, None)
    assert (theirs_b.argmax(1) == 1).mean() >= 0.9


def test_an_added_signs_offset_follows_its_number_of_examples():
    from islr.vocabulary import ADDED_OFFSETS, added_offset

    table = {1: 0.5, 3: -0.5, 5: -1.0}
    assert [added_offset(n, table) for n in (1, 2, 3, 4, 5, 9)] == [0.5, 0.0, -0.5, -0.75, -1, -1]
    assert added_offset(1) == ADDED_OFFSETS[1] and added_offset(20) == ADDED_OFFSETS[5]
