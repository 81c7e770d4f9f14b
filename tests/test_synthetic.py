import numpy as np
import pytest
from typer.testing import CliRunner

from islr.cli import build_app
from islr.datasets.synthetic import (
    EXTRACTOR,
    MAX_FRAMES,
    MIN_FRAMES,
    generate_sign,
    hand_points,
    make_signer,
    make_vocabulary,
    write_synthetic_cache,
)
from islr.errors import DatasetError
from islr.landmarks import HOLISTIC136, CacheError, LandmarkCache, load_cache_arrays


def test_same_seed_gives_identical_arrays_and_another_seed_does_not(tmp_path):
    a = write_synthetic_cache(tmp_path / "a", n_classes=4, per_class=3, seed=7)
    b = write_synthetic_cache(tmp_path / "b", n_classes=4, per_class=3, seed=7)
    c = write_synthetic_cache(tmp_path / "c", n_classes=4, per_class=3, seed=8)
    ea, sa = load_cache_arrays(a.out)
    eb, sb = load_cache_arrays(b.out)
    _, sc = load_cache_arrays(c.out)
    assert [e.id for e in ea] == [e.id for e in eb]
    for x, y in zip(sa, sb, strict=True):
        np.testing.assert_array_equal(x.data, y.data)
    assert any(x.data.shape != z.data.shape or not np.array_equal(x.data, z.data, equal_nan=True)
               for x, z in zip(sa, sc, strict=True))  # fmt: skip


def test_cache_shapes_layout_labels_and_signer_splits(tmp_path):
    summary = write_synthetic_cache(
        tmp_path / "s", n_classes=6, per_class=8, seed=0, n_signers=4, val_signers=1
    )
    entries, seqs = load_cache_arrays(summary.out)
    assert len(entries) == 48 == summary.n_samples
    assert {e.label for e in entries} == {f"synthetic-{c:02d}" for c in range(6)}
    assert summary.splits == {"train": 36, "val": 12}
    for entry, seq in zip(entries, seqs, strict=True):
        assert seq.layout == "holistic136" and seq.data.shape[1:] == (136, 3)
        assert MIN_FRAMES <= seq.n_frames <= MAX_FRAMES and entry.n_frames == seq.n_frames
        assert seq.extractor == EXTRACTOR and seq.fps == 30.0
        assert entry.extra["synthetic"] is True and entry.source == ""  # no input file
        # val = the held-out signer, and only that signer
        assert (entry.split == "val") == (entry.extra["signer"] == 3)
        # pose and most of the face are always there; x, y inside (or near) the image
        assert not np.isnan(seq.component("pose")).any()
        xy = seq.data[..., :2]
        assert np.nanmin(xy[:, :42]) > -0.1 and np.nanmax(xy[:, :42]) < 1.1
    every_class_in_val = {e.label for e in entries if e.split == "val"}
    assert len(every_class_in_val) == 6
    # hands go missing: at rest below the frame, or missed by the "detector"
    hands = np.concatenate([s.data[:, :42, 0] for s in seqs])
    assert 0.02 < np.isnan(hands).mean() < 0.6


def test_length_does_not_give_the_class_away(tmp_path):
    entries, _ = load_cache_arrays(
        write_synthetic_cache(tmp_path / "s", n_classes=8, per_class=12, seed=3).out
    )
    by_class = {}
    for e in entries:
        by_class.setdefault(e.label, []).append(e.n_frames)
    means = np.array([np.mean(v) for v in by_class.values()])
    spread_within = np.mean([np.std(v) for v in by_class.values()])
    assert means.std() < spread_within  # class means differ less than samples within a class


def test_pose_wrists_follow_the_hands_and_body_is_plausible():
    vocabulary = make_vocabulary(6, seed=1)
    seq = generate_sign(vocabulary[2], make_signer(0, seed=1), np.random.default_rng(0))
    lh, rh, pose = seq.component("left_hand"), seq.component("right_hand"), seq.component("pose")
    for hand, wrist in ((lh, 15), (rh, 16)):
        seen = ~np.isnan(hand[:, 0, 0])
        gap = np.linalg.norm(hand[seen, 0, :2] - pose[seen, wrist, :2], axis=1)
        assert (gap < 0.02).all()
    # signer's left shoulder is on the image right; the face is above the shoulders
    assert (pose[:, 11, 0] > pose[:, 12, 0]).all()
    face_y = np.nanmean(seq.component("face")[..., 1], axis=1)
    assert np.nanmax(face_y) < pose[:, 11:13, 1].min()


def test_hand_shapes_differ_and_hand_is_hand_sized():
    fist = hand_points(np.array([[0.8, 1, 1, 1, 1, 0.2]]), np.zeros((1, 3)))[0]
    flat = hand_points(np.array([[0.1, 0, 0, 0, 0, 0.1]]), np.zeros((1, 3)))[0]
    assert np.allclose(fist[0], 0) and np.allclose(flat[0], 0)  # wrist at the origin
    assert 0.9 < np.linalg.norm(flat[12]) < 1.1  # middle fingertip one hand length away
    assert np.linalg.norm(fist[12]) < 0.6  # curled


def test_bad_arguments_and_nonempty_cache(tmp_path):
    with pytest.raises(DatasetError, match="val-signers"):
        write_synthetic_cache(tmp_path / "x", n_classes=3, per_class=2, n_signers=2, val_signers=2)
    write_synthetic_cache(tmp_path / "y", n_classes=3, per_class=2)
    with pytest.raises(CacheError, match="--overwrite"):
        write_synthetic_cache(tmp_path / "y", n_classes=3, per_class=2)
    again = write_synthetic_cache(tmp_path / "y", n_classes=2, per_class=2, overwrite=True)
    assert len(LandmarkCache(again.out).entries()) == 4
    assert len(list((tmp_path / "y" / "samples").rglob("*.npz"))) == 4


def test_synth_command(tmp_path):
    result = CliRunner().invoke(
        build_app(),
        ["synth", "--out", str(tmp_path / "c"), "--classes", "3", "--per-class", "4",
         "--signers", "4", "--val-signers", "1", "--seed", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    entries = LandmarkCache(tmp_path / "c").entries()
    assert len(entries) == 12 and {e.split for e in entries} == {"train", "val"}
    assert all(e.layout == HOLISTIC136.name for e in entries)
    bad = CliRunner().invoke(build_app(), ["synth", "--out", str(tmp_path / "d"), "--classes", "1"])
    assert bad.exit_code == 2 and "at least 2" in bad.output
