"""A vocabulary that grows: the contract's scoring, the file format, enrol / rename / remove /
persist / reload, the near-duplicate check, calibration, and an engine that recognises a sign it
was never trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from islr.errors import InputError, VocabularyError
from islr.modelfile import Calibration
from islr.vocabulary import (
    Vocabulary,
    check_new_sign,
    fit_calibration,
    load_vocabulary,
    log_softmax,
    save_vocabulary,
    vocabulary_log_scores,
    vocabulary_path,
)

KNOWN = ["a", "b", "c"]


def _unit(*rows: list[float]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_without_added_signs_the_scores_are_the_classifiers_softmax():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    vocab = Vocabulary(2)
    scores = vocabulary_log_scores(logits, _unit([1, 0], [0, 1]), vocab, KNOWN, Calibration())
    np.testing.assert_allclose(scores, log_softmax(logits))
    # an ensemble's output is already a log-probability: unchanged
    np.testing.assert_allclose(log_softmax(log_softmax(logits)), log_softmax(logits))


def test_added_and_known_signs_follow_the_contract():
    cal = Calibration(10.0, -8.0)
    vocab = Vocabulary(2).with_examples("new", _unit([1, 0], [1, 0.2]), "takes")
    vocab = vocab.with_examples("b", _unit([0, 1]), "takes")  # a known sign gets examples
    assert vocab.labels(KNOWN) == ["a", "b", "c", "new"]
    logits = np.array([[1.0, 0.0, -1.0]])
    e = _unit([0.6, 0.8])
    scores = vocabulary_log_scores(logits, e, vocab, KNOWN, cal)
    takes = vocab.find("new").prototypes  # one prototype per take: the nearest counts
    assert takes.shape == (2, 2)
    L = log_softmax(logits)[0]
    expected = [L[0], max(L[1], 10 * 0.8 - 8), L[2], 10 * float((takes @ e[0]).max()) - 8]
    np.testing.assert_allclose(scores[0], expected, atol=1e-5)


def test_enrol_rename_remove_and_errors():
    vocab = Vocabulary(2).with_examples("hello", _unit([1, 0]), "a.mp4", added="t0")
    more = vocab.with_examples("hello", _unit([0, 1], [0, 1]), "b.mp4", added="t1")
    sign = more.find("hello")
    assert sign.examples == 3 and len(sign.prototypes) == 3  # one per take
    assert [p["source"] for p in sign.provenance] == ["a.mp4", "b.mp4"]
    assert vocab.find("hello").examples == 1  # immutable: the old one is unchanged
    renamed = more.renamed("hello", "hi", KNOWN)
    assert renamed.labels(KNOWN) == [*KNOWN, "hi"] and renamed.find("hi").examples == 3
    assert renamed.removed("hi", KNOWN).signs == ()
    with pytest.raises(VocabularyError, match="already a sign"):
        more.renamed("hello", "a", KNOWN)
    with pytest.raises(VocabularyError, match="trained on"):
        more.renamed("a", "z", KNOWN)
    with pytest.raises(VocabularyError, match="no such sign"):
        more.removed("nope", KNOWN)
    with pytest.raises(VocabularyError, match="trained on"):
        more.removed("a", KNOWN)
    with pytest.raises(InputError, match="label"):
        vocab.with_examples("  ", _unit([1, 0]), "x")
    with pytest.raises(InputError, match="2-d embedding"):
        vocab.with_examples("x", np.zeros((0, 2)), "x")


def test_file_round_trip_is_atomic_and_checked(tmp_path):
    vocab = Vocabulary(2).with_examples("hello", _unit([1, 0], [1, 1]), "a.mp4")
    path = vocabulary_path(tmp_path / "model.onnx")
    assert path == tmp_path / "model.vocab.json"
    assert vocabulary_path(tmp_path) == tmp_path / "best.vocab.json"  # a run folder
    save_vocabulary(path, vocab)
    d = json.loads(path.read_text())
    assert d["version"] == 1 and d["embedding_dim"] == 2
    assert set(d["signs"][0]) == {"label", "prototypes", "examples", "provenance"}
    back = load_vocabulary(path, 2)
    assert back.labels(KNOWN) == vocab.labels(KNOWN)
    np.testing.assert_allclose(
        back.find("hello").prototypes, vocab.find("hello").prototypes, atol=1e-6
    )
    assert not list(tmp_path.glob("*.tmp*"))
    assert load_vocabulary(tmp_path / "none.vocab.json", 2).signs == ()
    with pytest.raises(VocabularyError, match="another model"):
        load_vocabulary(path, 3)
    path.write_text('{"version": 1, "embedding_dim": 2, "signs": [{"label": "x"}]}')
    with pytest.raises(VocabularyError, match="not a valid vocabulary"):
        load_vocabulary(path, 2)
    path.write_text("{")
    with pytest.raises(VocabularyError, match="not a readable"):
        load_vocabulary(path, 2)


def test_merge_adds_the_other_vocabularys_signs_and_examples():
    a = Vocabulary(2).with_examples("x", _unit([1, 0]), "a")
    b = Vocabulary(2).with_examples("x", _unit([0, 1]), "b").with_examples("y", _unit([1, 1]), "b")
    merged = a.merged(b)
    assert merged.labels([]) == ["x", "y"] and merged.find("x").examples == 2
    with pytest.raises(VocabularyError, match="another model"):
        a.merged(Vocabulary(3))


def test_a_new_sign_too_close_to_an_existing_one_is_flagged():
    known_prototypes = _unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    vocab = Vocabulary(3).with_examples("mine", _unit([1, 1, 0]), "x")
    close = check_new_sign("dup", _unit([0.05, 1, 0], [0, 1, 0.05]), vocab, KNOWN, known_prototypes)
    assert close.flagged and close.nearest[0] == "b" and close.nearest[1] > 0.99
    assert "too close to 'b'" in close.reason
    d = close.to_dict()
    assert d["nearest"]["label"] == "b" and len(d["consistency"]["per_take"]) == 2
    far = check_new_sign("far", _unit([1, -1, 1]), vocab, KNOWN, known_prototypes)
    assert not far.flagged and far.reason is None and far.nearest[1] < 0.9
    near_added = check_new_sign("other", _unit([1, 0.9, 0]), vocab, KNOWN, known_prototypes)
    assert near_added.flagged and near_added.nearest[0] == "mine"
    # more examples of the same sign are not compared with itself
    again = check_new_sign("mine", _unit([1, 1, 0]), vocab, KNOWN, None)
    assert again.nearest is None and not again.flagged


def test_calibration_fit_separates_a_simulated_new_sign():
    rng = np.random.default_rng(0)
    centres = _unit(*rng.normal(size=(6, 16)))
    y = np.repeat(np.arange(6), 20)
    e = centres[y] + 0.15 * rng.normal(size=(len(y), 16))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    logits = 4 * (e @ centres.T)  # a head that agrees with the embedding
    cal = fit_calibration(logits, e, y, shots=3)
    assert cal.scale > 0 and cal.bias < 0
    # a sign held out of the head is recognised from 3 takes, the others keep theirs
    vocab = Vocabulary(16).with_examples("new", e[y == 5][:3], "x")
    scores = vocabulary_log_scores(logits[:, :5], e, vocab, list("abcde"), cal)
    pred = scores.argmax(1)
    assert (pred[y == 5][3:] == 5).mean() > 0.9 and (pred[y < 5] == y[y < 5]).mean() > 0.9


def _unseen_takes(n: int, start: int = 0, signer: int = 5):
    from tests.test_inference_support import unseen_synthetic_sign

    return [unseen_synthetic_sign(start + i, signer + i % 2) for i in range(n)]


@pytest.fixture(scope="module")
def onnx_model():
    pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
    pytest.importorskip("onnx", reason="needs onnx, the [train] extra")
    from tests.test_inference_support import synthetic_onnx

    return synthetic_onnx()


def test_enrol_persist_reload_recognise_remove(onnx_model, tmp_path):
    import shutil

    from islr.inference import Engine
    from islr.inference.enroll import TAKE_AUGMENTATIONS, add_takes, check_takes, embed_takes

    model = tmp_path / "m.onnx"
    shutil.copy(onnx_model, model)
    engine = Engine.load(model, threads=1)
    assert engine.reference.known_prototypes is not None and engine.vocabulary.signs == ()
    assert engine.reference.known_embeddings is not None
    known = list(engine.labels)
    takes = embed_takes(engine, _unseen_takes(5))
    assert takes.augmented.shape == (5 * TAKE_AUGMENTATIONS, engine.embedding_dim)
    check = check_takes(engine, "wave", takes.embeddings)
    assert not check.flagged, check.reason
    assert min(check.per_take) > 0.5
    vocab = add_takes(engine.vocabulary, check, takes, "5 synthetic takes")
    assert vocab.head is None  # refitted when the engine takes it
    engine.set_vocabulary(vocab)
    assert engine.vocabulary.head_is_current(engine.known_labels)
    assert engine.vocabulary.head.labels == (*known, "wave")
    save_vocabulary(engine.vocabulary_file, engine.vocabulary)

    reloaded = Engine.load(model, threads=1)  # a restart: the sign is still there
    assert reloaded.labels == [*known, "wave"]
    np.testing.assert_array_equal(reloaded.vocabulary.head.weight, engine.vocabulary.head.weight)
    np.testing.assert_array_equal(
        reloaded.vocabulary.find("wave").augmented, engine.vocabulary.find("wave").augmented
    )
    queries = _unseen_takes(6, start=100)
    top = [reloaded.predict(q, top_k=1)[0][0] for q in queries]
    assert top.count("wave") >= 5, top
    probs = reloaded.predict_batch(queries)
    assert probs.shape == (6, len(known) + 1)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    from tests.test_inference_support import synthetic_labels, synthetic_sign

    kept = [  # the known signs keep theirs (this 10-epoch toy model's embedding puts the new
        # sign near one of them, hence not all)
        reloaded.predict(synthetic_sign(pos, 500 + i), 1)[0][0] == label
        for pos, label in enumerate(synthetic_labels())
        for i in range(3)
    ]
    assert sum(kept) >= 7, kept

    # a second recording of the same sign under another name is flagged as too close, as is a
    # new recording of a known sign
    again = check_takes(reloaded, "wave2", reloaded.embed_batch(_unseen_takes(3, start=200)))
    # (the near-duplicate check compares plain embeddings: prototypes, not the head)
    assert again.flagged and again.nearest[0] == "wave"
    known_again = reloaded.embed_batch([synthetic_sign(1, 700 + i) for i in range(3)])
    check = check_takes(reloaded, "copy", known_again)
    assert check.flagged and check.nearest[0] == synthetic_labels()[1]

    removed = reloaded.vocabulary.removed("wave", reloaded.known_labels)
    save_vocabulary(reloaded.vocabulary_file, removed)
    assert Engine.load(model, threads=1).labels == known
