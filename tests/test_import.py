import json

import numpy as np
import pytest
from typer.testing import CliRunner

from islr.cli import build_app
from islr.datasets.importers import (
    assign_hands,
    import_include_json,
    import_include_splits,
    import_pose_files,
)
from islr.errors import DatasetError
from islr.extract import label_from_path, sample_id_for
from islr.landmarks import HANDS_POSE75, HOLISTIC136, LandmarkCache, load_cache_arrays
from islr.landmarks.layouts import FACE_SIGNING_61
from tests.conftest import shared_data


class Run:
    """A CLI run; ``text`` is the output with rich's line wrapping undone."""

    def __init__(self, *args):
        self.result = CliRunner().invoke(build_app(), [str(a) for a in args])
        self.exit_code = self.result.exit_code
        self.output = self.result.output
        self.text = " ".join(self.output.split())


run = Run


@pytest.fixture(scope="module")
def include50_cache(tmp_path_factory):
    """INCLUDE-50 train imported with the CLI, then val into the same cache (module-wide)."""
    train = shared_data("include50", "train")
    val = shared_data("include50", "val")
    cache = tmp_path_factory.mktemp("include50") / "cache"
    first = run("import", "include-json", train, "--out", cache, "--split", "train")
    assert first.exit_code == 0, first.output
    after_train = len(LandmarkCache(cache).entries())
    second = run("import", "include-json", val, "--out", cache, "--split", "val")
    assert second.exit_code == 0, second.output
    return cache, after_train


def test_include50_import_counts_labels_and_splits(include50_cache):
    cache, after_train = include50_cache
    assert after_train == 689
    entries = LandmarkCache(cache).entries()
    assert len(entries) == 766
    assert len({e.label for e in entries}) == 50
    assert sum(e.split == "train" for e in entries) == 689
    assert sum(e.split == "val" for e in entries) == 77
    assert all(e.layout == "hands_pose75" for e in entries)
    entry = next(e for e in entries if e.id == "bank_MVI_3336")
    assert entry.extra["video"] == "MVI_3336" and entry.label == "bank"
    assert not LandmarkCache(cache).failures()


def test_include50_hands_sit_on_their_own_pose_wrist(include50_cache):
    cache, _ = include50_cache
    _, seqs = load_cache_arrays(cache)
    pose = HANDS_POSE75.slice("pose")
    nearer_own = total = 0
    for seq in seqs:
        assert seq.data.shape[1:] == (75, 3) and np.isnan(seq.data[..., 2]).all()  # 2-D source
        for hand, own, other in (("left_hand", 15, 16), ("right_hand", 16, 15)):
            wrist = seq.data[:, HANDS_POSE75.slice(hand)][:, 0, :2]
            seen = ~np.isnan(wrist[:, 0]) & ~np.isnan(seq.data[:, pose][:, [own, other], 0]).any(1)
            d_own = np.linalg.norm(wrist[seen] - seq.data[seen, pose][:, own, :2], axis=1)
            d_other = np.linalg.norm(wrist[seen] - seq.data[seen, pose][:, other, :2], axis=1)
            nearer_own += int((d_own < d_other).sum())
            total += int(seen.sum())
    assert total > 50_000
    assert nearer_own / total > 0.98  # the raw hand1/hand2 order manages ~0.5


def test_reimport_is_idempotent_and_can_move_split(include50_cache, tmp_path):
    cache, _ = include50_cache
    val = shared_data("include50", "val")
    before = (cache / "manifest.jsonl").read_text()
    summary = import_include_json(val, cache, split="val")
    assert (summary.imported, summary.skipped, summary.resplit) == (0, 77, 0)
    assert (cache / "manifest.jsonl").read_text() == before
    # a copy of the cache: moving val to test only appends manifest lines, no re-import
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(cache, copy)
    moved = import_include_json(val, copy, split="test")
    assert (moved.imported, moved.resplit) == (0, 77)
    assert sum(e.split == "test" for e in LandmarkCache(copy).entries()) == 77


def _include_json(t=5, hand_shape=21, label="loud", uid="loud_MVI_1"):
    rng = np.random.default_rng(0)
    d = {"uid": uid, "label": label, "n_frames": t}
    for key, n in (("pose", 33), ("hand1", hand_shape), ("hand2", 21)):
        for c in "xy":
            d[f"{key}_{c}"] = rng.random((t, n)).tolist()
    return d


def test_bad_include_json_files_become_failure_rows(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.json").write_text(json.dumps(_include_json()))
    (src / "notjson.json").write_text("this is not json {")
    (src / "shape.json").write_text(json.dumps(_include_json(hand_shape=20, uid="x_MVI_2")))
    (src / "list.json").write_text("[1, 2, 3]")
    nolabel = _include_json(uid="y_MVI_3")
    del nolabel["label"]
    (src / "nolabel.json").write_text(json.dumps(nolabel))
    result = run("import", "include-json", src, "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    cache = LandmarkCache(tmp_path / "c")
    assert [e.id for e in cache.entries()] == ["loud_MVI_1"]
    reasons = dict(cache.failures())
    assert len(reasons) == 4
    # failure rows and manifest sources name a file by its path relative to the imported folder
    assert "not valid JSON" in reasons["notjson.json"]
    assert "expected [frames][21]" in reasons["shape.json"]
    assert "label" in reasons["nolabel.json"]
    assert [e.source for e in cache.entries()] == ["good.json"]
    # fixing a file and re-running imports it and clears its failure row
    (src / "notjson.json").write_text(json.dumps(_include_json(uid="loud_MVI_9")))
    again = import_include_json(src, tmp_path / "c")
    assert again.imported == 1 and again.skipped == 1
    assert len(cache.failures()) == 3


def test_empty_folder_and_missing_folder_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .json files"):
        import_include_json(tmp_path / "empty", tmp_path / "c")
    result = run("import", "include-json", tmp_path / "empty", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "no .json files" in result.text
    result = run("import", "include-json", tmp_path / "nope", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "no such file or folder" in result.text
    result = run("import", "csv", tmp_path / "empty", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "unknown import format" in result.text


def test_assign_hands_jointly_and_without_wrists():
    t = 4
    pose = np.full((t, 33, 2), np.nan)
    pose[:, 15] = [0.7, 0.5]  # signer's left wrist, image right
    pose[:, 16] = [0.3, 0.5]
    near_left = np.full((t, 21, 2), 0.68)
    near_right = np.full((t, 21, 2), 0.32)
    near_right[..., 1] = 0.5
    near_left[..., 1] = 0.5
    missing = np.full((t, 21, 2), np.nan)
    left, right = assign_hands(pose, near_right, near_left)  # swapped input order
    assert np.allclose(left[:, 0, 0], 0.68) and np.allclose(right[:, 0, 0], 0.32)
    # both hands nearest the same wrist: the joint assignment still splits them
    both_left = np.full((t, 21, 2), 0.6)
    both_left[..., 1] = 0.5
    left, right = assign_hands(pose, both_left, near_left)
    assert np.allclose(left[:, 0, 0], 0.68) and np.allclose(right[:, 0, 0], 0.6)
    # one hand only, and no pose at all: the image side decides
    left, right = assign_hands(np.full((t, 33, 2), np.nan), missing, near_right)
    assert np.isnan(left).all() and np.allclose(right[:, 0, 0], 0.32)


def test_import_pose_files_holistic(tmp_path):
    football = shared_data("videos", "FOOTBALL.mediapipe_holistic.pose")
    sign_dir = tmp_path / "src" / "Sports" / "3. football"
    sign_dir.mkdir(parents=True)
    (sign_dir / "FOOTBALL.pose").write_bytes(football.read_bytes())
    result = run("import", "pose", tmp_path / "src", "--out", tmp_path / "c", "--split", "test")
    assert result.exit_code == 0, result.output
    entries, seqs = load_cache_arrays(tmp_path / "c")
    (entry,), (seq,) = entries, seqs
    assert entry.label == "football" and entry.label_raw == "3. football"
    assert entry.split == "test" and entry.id == "Sports/3. football/FOOTBALL"
    assert entry.source == "Sports/3. football/FOOTBALL.pose"  # relative to the imported folder
    # the importer names samples by the extractor's rules: a video at the same place gets this id
    rel = "Sports/3. football/FOOTBALL.pose"
    assert entry.id == sample_id_for(rel)
    assert (entry.label, entry.label_raw) == label_from_path(rel)[:2]
    assert seq.layout == "holistic136" and seq.data.shape == (62, 136, 3)
    assert abs(seq.fps - 29.97) < 0.01
    # pixels -> normalised coordinates: the face sits inside the image
    face = seq.component("face")
    assert np.nanmin(face[..., :2]) > 0 and np.nanmax(face[..., :2]) < 1
    # the same point read straight from the file
    from pose_format import Pose

    pose = Pose.read(football.read_bytes())
    raw = np.ma.getdata(pose.body.data)[:, 0]
    nose = pose.header.components[1].points.index("1")  # face-mesh nose tip
    row = HOLISTIC136.index("face", 1)
    np.testing.assert_allclose(seq.data[:, row, 0], raw[:, 33 + nose, 0] / 640, rtol=1e-5)
    assert FACE_SIGNING_61.index(1) == row - HOLISTIC136.slice("face").start


def test_import_pose_reduced_components_and_bad_file(tmp_path):
    reduced = shared_data("videos", "tests_mediapipe.pose")
    src = tmp_path / "src"
    src.mkdir()
    (src / "reduced.pose").write_bytes(reduced.read_bytes())
    (src / "broken.pose").write_bytes(b"not a pose file at all")
    summary = import_pose_files(src, tmp_path / "c", label="hello")
    assert summary.imported == 1 and len(summary.failures) == 1
    assert "not a readable .pose file" in summary.failures[0][1]
    (seq,) = load_cache_arrays(tmp_path / "c")[1]
    pose = seq.component("pose")
    assert np.isnan(pose[:, 0]).all()  # the file has no nose point
    assert not np.isnan(pose[:, 11]).all()  # but has the shoulders
    assert LandmarkCache(tmp_path / "c").entries()[0].label == "hello"


def test_import_include_splits_imports_each_missing_split_once(tmp_path):
    import shutil

    val = shared_data("include50", "val")
    for split, files in (("train", slice(0, 3)), ("val", slice(3, 5))):
        (tmp_path / "src" / split).mkdir(parents=True)
        for f in sorted(val.glob("*.json"))[files]:
            shutil.copy(f, tmp_path / "src" / split / f.name)
    cache = tmp_path / "cache"
    assert import_include_splits(tmp_path / "src", cache, splits=("train",)) == ["train"]
    assert import_include_splits(tmp_path / "src", cache) == ["val"]  # train is there already
    assert import_include_splits(tmp_path / "src", cache) == []
    splits = sorted(e.split for e in LandmarkCache(cache).entries())
    assert splits == ["train"] * 3 + ["val"] * 2
