"""Evaluation: metrics on known predictions, the report files, and the robustness perturbations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from islr.errors import DatasetError
from islr.evaluation import PERTURBATIONS, compute_metrics, perturb_sequence, write_report
from islr.landmarks import LandmarkSequence, get_layout


def one_hot_probs(pred: list[int], n_classes: int) -> np.ndarray:
    probs = np.full((len(pred), n_classes), 0.01, dtype=np.float32)
    probs[np.arange(len(pred)), pred] = 0.9
    return probs


def test_metrics_of_known_predictions():
    labels = ["a", "b", "c"]
    y_true = np.array([0, 0, 1, 1, 2, 2])
    probs = one_hot_probs([0, 1, 1, 1, 2, 0], 3)
    probs[1, 0] = 0.5  # the wrong top-1 of sample 1 has its true class second
    r = compute_metrics(probs, y_true, labels)
    assert r.top1 == pytest.approx(4 / 6)
    assert r.top5 == 1.0  # 3 classes: the top 3 always hold the truth
    # per class: a P=1/2 R=1/2, b P=2/3 R=1, c P=1 R=1/2
    f1 = [0.5, 0.8, 2 / 3]
    assert r.macro_f1 == pytest.approx(np.mean(f1))
    assert [row["support"] for row in r.per_class] == [2, 2, 2]
    assert [row["f1"] for row in r.per_class] == pytest.approx(f1)
    assert r.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_top5_with_many_classes():
    n = 10
    y_true = np.arange(n)
    probs = np.tile(np.linspace(1.0, 0.1, n, dtype=np.float32), (n, 1))  # always ranks 0..9
    r = compute_metrics(probs, y_true, [f"s{i}" for i in range(n)])
    assert r.top1 == pytest.approx(0.1) and r.top5 == pytest.approx(0.5)


def test_report_files(tmp_path: Path):
    labels = [f"sign {i}" for i in range(55)]  # more than 50: the confusion matrix must scale
    rng = np.random.default_rng(0)
    y_true = np.repeat(np.arange(55), 2)
    r = compute_metrics(rng.random((110, 55)).astype(np.float32), y_true, labels)
    r.unknown = {"never seen": 3}
    out = write_report(r, tmp_path / "eval-val", "test")
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"top1", "top5", "macro_f1", "n", "n_unknown"} <= set(metrics)
    assert metrics["n"] == 110 and metrics["n_unknown"] == 3
    rows = list(csv.DictReader((out / "per_class.csv").open()))
    assert len(rows) == 55 and set(rows[0]) == {"label", "precision", "recall", "f1", "support"}
    png = (out / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width >= 1200  # big enough to read 55 names


def holistic_sequence() -> LandmarkSequence:
    """One synthetic holistic136 sign, with image size 1920x1080 (so aspect matters)."""
    from islr.datasets.synthetic import generate_sign, make_signer, make_vocabulary

    sign = make_vocabulary(2, seed=0)[1]
    seq = generate_sign(sign, make_signer(0, 0), np.random.default_rng(0))
    seq.extra.update(image_width=1920, image_height=1080)
    return seq


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_perturbations_are_seeded_and_keep_missing_points(name: str):
    seq = holistic_sequence()
    a = perturb_sequence(seq, name, np.random.default_rng(3))
    b = perturb_sequence(seq, name, np.random.default_rng(3))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.layout == seq.layout and a.data.shape[1:] == seq.data.shape[1:]
    assert a.data.shape != seq.data.shape or not np.array_equal(a.data, seq.data, equal_nan=True)
    assert "image_width" not in a.extra  # already in width units: not corrected twice
    if name not in ("speed", "fps-15", "dropped-frames"):  # these change the number of frames
        assert a.n_frames == seq.n_frames
    if name in (
        "mirror",
        "mirror-selfie",
        "rotate",
        "zoom",
    ):  # geometric: what was missing stays missing
        lay = get_layout(seq.layout)
        if name.startswith("mirror"):
            from islr.landmarks.layouts import mirror_permutation

            missing = np.isnan(seq.data[:, mirror_permutation(lay), 0])
        else:
            missing = np.isnan(seq.data[..., 0])
        np.testing.assert_array_equal(np.isnan(a.data[..., 0]), missing)
    if name == "drop-hands":
        assert np.isnan(a.data).sum() > np.isnan(seq.data).sum()


def test_mirror_twice_is_the_original():
    seq = holistic_sequence()
    twice = perturb_sequence(
        perturb_sequence(seq, "mirror", np.random.default_rng(0)),
        "mirror",
        np.random.default_rng(0),
    )
    from islr.features import aspect_corrected

    np.testing.assert_allclose(twice.data, aspect_corrected(seq), atol=1e-5)


def test_rotation_keeps_distances():
    seq = holistic_sequence()
    from islr.features import aspect_corrected

    before = aspect_corrected(seq)
    after = perturb_sequence(seq, "rotate", np.random.default_rng(0)).data
    d0 = np.linalg.norm(before[:, 0, :2] - before[:, 5, :2], axis=-1)
    d1 = np.linalg.norm(after[:, 0, :2] - after[:, 5, :2], axis=-1)
    ok = ~np.isnan(d0)
    np.testing.assert_allclose(d1[ok], d0[ok], rtol=1e-4)


def test_unknown_perturbation_is_a_clear_error():
    with pytest.raises(DatasetError, match="unknown perturbation"):
        perturb_sequence(holistic_sequence(), "upside-down", np.random.default_rng(0))
