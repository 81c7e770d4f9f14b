"""Training inputs: a label file (sample id -> label), the seed config's fallbacks on a layout
without face or z, and a model config that cannot be built."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")

from islr.errors import ConfigError, DatasetError
from islr.landmarks import LandmarkCache, LandmarkSequence, ManifestEntry
from islr.training import load_config, load_training_data, train

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_cache(root: Path, samples: list[tuple[str, str]], z: bool = True) -> Path:
    """hands_pose75 cache of random sequences, (id, label) each, all in split train."""
    rng = np.random.default_rng(0)
    cache = LandmarkCache(root)
    with cache.writer() as w:
        for sample_id, label in samples:
            data = rng.random((12, 75, 3), dtype=np.float32)
            if not z:
                data[..., 2] = np.nan  # as INCLUDE's keypoints: x, y only
            seq = LandmarkSequence(data, "hands_pose75")
            w.add(seq, ManifestEntry(id=sample_id, label=label, split="train"))
    return root


def test_label_file_relabels_and_selects_samples(tmp_path: Path):
    cache = write_cache(tmp_path / "c", [(f"s{i}", "") for i in range(6)])
    labels = tmp_path / "file_to_label.json"
    labels.write_text(json.dumps({"s0": "a", "s1": "a", "s2": "b", "s3": "b"}))
    data = load_training_data(str(cache), label_file=labels)
    assert data.labels == ["a", "b"] and len(data.train) == 4
    assert data.file_to_label == {"s0": "a", "s1": "a", "s2": "b", "s3": "b"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"s0": "a", "nope/1": "b", "nope/2": "b"}, "names 2 samples that .* does not hold"),
        ([1, 2], "expected a JSON object"),
        ({}, "empty"),
    ],
)
def test_bad_label_files_are_dataset_errors(tmp_path: Path, content, message: str):
    cache = write_cache(tmp_path / "c", [(f"s{i}", "x") for i in range(3)])
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(content))
    with pytest.raises(DatasetError, match=message):
        load_training_data(str(cache), label_file=labels)
    with pytest.raises(DatasetError, match="no such label file"):
        load_training_data(str(cache), label_file=tmp_path / "absent.json")


def test_label_file_through_the_config(tmp_path: Path):
    cache = write_cache(tmp_path / "c", [(f"s{i}", "old") for i in range(4)])
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"s0": "a", "s1": "b", "s2": "a", "s3": "b"}))
    cfg = load_config(None, [f"data.label_file={labels}", "optim.epochs=1", "features.seq_len=8",
                             "model.kwargs={dim: 16, stages: 1, conv_blocks: 1, heads: 2}"])  # fmt: skip
    train(cfg, cache, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "labels.json").read_text()) == ["a", "b"]


@pytest.mark.parametrize("z", [True, False])
def test_seed_config_fits_a_layout_without_face_or_z(tmp_path: Path, z: bool):
    cache = write_cache(tmp_path / "c", [(f"s{i}", "ab"[i % 2]) for i in range(4)], z=z)
    data = load_training_data(str(cache))
    assert data.has_z is z
    seed = load_config("seed").features
    features = seed.for_layout(data.layout, data.has_z)
    assert features.coords == ("xyz" if z else "xy")
    assert features.points == {"pose": "all", "left_hand": "all", "right_hand": "all"}
    assert not (features.normalize or features.hand_relative or features.motion)


def test_model_kwargs_that_do_not_fit_are_a_config_error(tmp_path: Path):
    cache = write_cache(tmp_path / "c", [(f"s{i}", "ab"[i % 2]) for i in range(4)])
    cfg = load_config(None, ["model.kwargs={depth: 3}", "optim.epochs=1"])
    with pytest.raises(ConfigError, match="cannot be built"):
        train(cfg, cache, tmp_path / "run")


def test_made_up_non_signs_are_a_sign_backwards_or_two_signs_hands() -> None:
    """Outlier exposure's non-signs: one clip reversed in time, or its right hand replaced by the
    other clip's (time-aligned to its length); a layout without a right hand only reverses."""
    from islr.features.augment import made_up_non_sign
    from islr.features.model_input import resample
    from islr.landmarks import get_layout

    layout = get_layout("holistic136")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, layout.n_points, 3)).astype(np.float32)
    b = rng.normal(size=(45, layout.n_points, 3)).astype(np.float32)
    hand = layout.slice("right_hand")
    kinds = set()
    for seed in range(20):
        out = made_up_non_sign(a, b, layout, np.random.default_rng(seed))
        assert out.shape == a.shape
        if np.array_equal(out, a[::-1]):
            kinds.add("reversed")
        else:
            np.testing.assert_array_equal(out[:, hand], resample(b, len(a))[:, hand])
            others = np.ones(layout.n_points, bool)
            others[hand] = False
            np.testing.assert_array_equal(out[:, others], a[:, others])
            kinds.add("swapped")
    assert kinds == {"reversed", "swapped"}


def test_outlier_batch_is_shaped_like_a_training_batch() -> None:
    from islr.landmarks import get_layout
    from islr.training.data import SampleSet, make_outlier_batch

    layout = get_layout("holistic136")
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, layout.n_points, 3)).astype(np.float32) for n in (20, 33, 41)]
    samples = SampleSet(["a", "b", "c"], arrays, np.array([0, 1, 2]))
    batch = make_outlier_batch(samples, 5, 16, layout, None, np.random.default_rng(1))
    assert batch.shape == (5, 16, layout.n_points, 3) and batch.dtype == np.float32
