"""`islr import` of every format (seed-npy, mpdata, npy, gislr, openhands, auto), bad files,
resuming, and `islr export-data` round trips. Real files from ../shared/data where it has them,
otherwise files generated to the published layouts."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from islr.datasets.detect import detect_format
from islr.datasets.formats import import_format
from islr.datasets.frame_layouts import (
    NAMED_FRAME_LAYOUTS,
    SEED_FACE_POINTS,
    flatten,
    get_frame_layout,
    load_frame_layout,
    unflatten,
)
from islr.errors import DatasetError
from islr.landmarks import HANDS_POSE75, HOLISTIC136, LandmarkCache, load_cache_arrays
from islr.landmarks.layouts import LayoutError
from tests.conftest import shared_data
from tests.test_import import _include_json, run

MPDATA = ("other-signers", "mpdata-shreehar", "MP_Data")
GREETINGS = ("other-signers", "include-greetings-holistic", "keypoint_data")


def _by_id(cache):
    entries, seqs = load_cache_arrays(cache)
    return {e.id: (e, s) for e, s in zip(entries, seqs, strict=True)}


# ---- frame layouts -----------------------------------------------------------------------------
def test_frame_layout_widths_and_specs(tmp_path):
    assert {n: NAMED_FRAME_LAYOUTS[n].width for n in NAMED_FRAME_LAYOUTS} == {
        "seed408": 408, "mp1662": 1662, "mp258": 258, "mp126": 126,
    }  # fmt: skip
    assert get_frame_layout("hands_pose75:xy").width == 150
    assert get_frame_layout("holistic136:xyz").width == 408
    assert SEED_FACE_POINTS[:3] == (0, 9, 18) and SEED_FACE_POINTS[-1] == 441
    with pytest.raises(LayoutError, match="unknown frame layout"):
        get_frame_layout("nope")
    with pytest.raises(LayoutError, match="coords must be"):
        get_frame_layout("hands_pose75:xq")
    spec = tmp_path / "mine.yaml"
    spec.write_text(
        "name: mine\ninterleave: coord\nstore_layout: hands_pose75\nblocks:\n"
        "  - {component: right_hand, indices: all, coords: xy}\n"
        "  - {component: pose, indices: [11, 12], coords: xy}\n"
    )
    mine = load_frame_layout(spec)
    assert mine.width == 46 and mine.interleave == "coord"
    # coordinate-major: all x, then all y
    values = np.arange(46, dtype=np.float32)[None] + 1
    data = unflatten(values, mine)
    assert data[0, 0, :2].tolist() == [1, 24] and data[0, 22, :2].tolist() == [23, 46]
    np.testing.assert_array_equal(flatten(data, mine), values)
    (tmp_path / "bad.yaml").write_text("blocks: [{component: tail, coords: xy}]\n")
    with pytest.raises(LayoutError, match="unknown component"):
        load_frame_layout(tmp_path / "bad.yaml")


# ---- seed notebook cache -----------------------------------------------------------------------
def _seed_frames(t: int, rng) -> np.ndarray:
    """(T, 408) as the seed's extraction writes it: pose 33x(x,y,z,vis), the hand detector's
    first and second hand 21x3, face points 0,9,...,441 x3; zeros for what was not found."""
    values = np.zeros((t, 408), dtype=np.float32)
    pose = rng.uniform(0.3, 0.7, (t, 33, 4)).astype(np.float32)
    pose[:, 15, :2] = [0.7, 0.6]  # signer's left wrist, image right
    pose[:, 16, :2] = [0.3, 0.6]
    values[:, :132] = pose.reshape(t, -1)
    near_right = np.full((t, 21, 3), 0.31, dtype=np.float32)  # listed first by the detector
    near_left = np.full((t, 21, 3), 0.69, dtype=np.float32)
    values[:, 132:195] = near_right.reshape(t, -1)
    values[:, 195:258] = near_left.reshape(t, -1)
    values[: t // 2, 195:258] = 0  # the second hand not found in the first half
    values[:, 258:] = rng.uniform(0.4, 0.6, (t, 150))
    return values


def test_seed_npy_layout_labels_and_hands(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "isl_cache_123"
    src.mkdir()
    raw = {f"MVI_{i:04d}.npy": _seed_frames(40 + i, rng) for i in range(4)}
    for name, values in raw.items():
        np.save(src / name, values)
    np.save(src / "MVI_9999.npy", _seed_frames(12, rng))  # not in the label file
    labels = {"MVI_0000.npy": "good evening", "MVI_0001.npy": "hello"}
    labels |= {"MVI_0002.npy": "hello", "MVI_0003.npy": "big large"}
    (tmp_path / "file_to_label.json").write_text(json.dumps(labels))  # next to the folder
    assert detect_format(src).format == "seed-npy"
    result = run("import", "seed-npy", src, "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    samples = _by_id(tmp_path / "c")
    assert set(samples) == {"MVI_0000", "MVI_0001", "MVI_0002", "MVI_0003"}
    entry, seq = samples["MVI_0000"]
    assert entry.label == "good evening" and seq.layout == "holistic136"
    assert seq.data.shape == (40, 136, 3)
    assert (seq.extra["image_width"], seq.extra["image_height"]) == (1920, 1080)
    values = raw["MVI_0000.npy"]
    pose = HOLISTIC136.slice("pose")
    np.testing.assert_array_equal(seq.data[:, pose], values[:, :132].reshape(40, 33, 4)[..., :3])
    # the first-listed hand sits on the right wrist: it is the signer's right hand
    right, left = seq.component("right_hand"), seq.component("left_hand")
    assert np.allclose(right[..., 0], 0.31)
    assert np.isnan(left[:20]).all() and np.allclose(left[20:, :, 0], 0.69)
    # face: mesh point 63 is the seed's 8th face point and one of holistic136's 61
    row = HOLISTIC136.index("face", 63)
    np.testing.assert_array_equal(seq.data[:, row], values[:, 258 + 7 * 3 : 258 + 8 * 3])
    assert np.isnan(seq.data[:, HOLISTIC136.index("face", 13)]).all()  # not a seed point
    assert dict(LandmarkCache(tmp_path / "c").failures()) == {
        "MVI_9999.npy": "not in the label file"
    }


def test_seed_npy_without_label_file_is_a_clear_error(tmp_path):
    np.save(tmp_path / "MVI_1.npy", _seed_frames(12, np.random.default_rng(0)))
    result = run("import", "seed-npy", tmp_path, "--out", tmp_path / "c")
    assert result.exit_code == 2 and "file_to_label.json" in result.text


# ---- MP_Data -----------------------------------------------------------------------------------
def test_mpdata_real_1662_zeros_are_missing(tmp_path):
    src = shared_data(*MPDATA)
    result = run("import", "mpdata", src, "--out", tmp_path / "c", "--image-size", "640x480")
    assert result.exit_code == 0, result.output
    samples = _by_id(tmp_path / "c")
    assert len(samples) == 90
    assert {e.label for e, _ in samples.values()} == {"hello", "thank you", "idle"}
    entry, seq = samples["hello/0"]
    assert seq.n_frames == 30 and seq.extra["image_width"] == 640
    raw = np.stack([np.load(src / "hello" / "0" / f"{f}.npy") for f in range(30)])
    assert raw.shape == (30, 1662)
    np.testing.assert_allclose(
        seq.component("pose"), raw[:, :132].reshape(30, 33, 4)[..., :3], rtol=1e-6
    )
    left_raw = raw[:, 1536:1599].reshape(30, 21, 3)
    absent = (left_raw == 0).all(axis=(1, 2))
    assert absent.any() and (~absent).any()  # this sequence has frames with and without it
    assert np.isnan(seq.component("left_hand")[absent]).all()
    np.testing.assert_allclose(seq.component("left_hand")[~absent], left_raw[~absent], rtol=1e-6)
    mesh = raw[:, 132:1536].reshape(30, 468, 3)
    np.testing.assert_allclose(seq.data[:, HOLISTIC136.index("face", 61)], mesh[:, 61], rtol=1e-6)


def _write_mpdata(root, widths: dict[str, list[int]], rng):
    for name, frame_widths in widths.items():
        folder = root / "MP_Data" / name.split("/")[0] / name.split("/")[1]
        folder.mkdir(parents=True)
        for f, width in enumerate(frame_widths):
            values = rng.random(width)
            if f == 0:
                values[132:195] = 0  # frame 0 without a left hand
            np.save(folder / f"{f}.npy", values)


def test_mpdata_258_and_a_wrong_length_frame(tmp_path):
    rng = np.random.default_rng(1)
    good = [258] * 12
    _write_mpdata(tmp_path, {"hello/0": good, "hello/1": good, "bye/0": good}, rng)
    _write_mpdata(tmp_path, {"bye/1": [258] * 5 + [257] + [258] * 6}, rng)
    src = tmp_path / "MP_Data"
    found = detect_format(src)
    assert found.format == "mpdata" and "258 values per frame (mp258)" in found.reason
    summary = import_format("mpdata", src, tmp_path / "c")
    assert summary.imported == 3 and len(summary.failures) == 1
    source, reason = summary.failures[0]
    assert source == "bye/1" and "frame 5.npy has 257 values" in reason
    samples = _by_id(tmp_path / "c")
    _, seq = samples["hello/0"]
    assert seq.data.shape == (12, 136, 3) and "image_width" not in seq.extra
    assert np.isnan(seq.component("left_hand")[0]).all()
    assert not np.isnan(seq.component("left_hand")[1:]).any()
    assert np.isnan(seq.component("face")).all()  # 258 values: no face
    raw = np.load(src / "hello" / "0" / "3.npy")
    np.testing.assert_allclose(seq.component("right_hand")[3], raw[195:].reshape(21, 3), 1e-6)


# ---- plain arrays ------------------------------------------------------------------------------
def test_npy_real_include_greetings_interleaved_xy(tmp_path):
    src = shared_data(*GREETINGS)
    found = detect_format(src)
    assert found.format == "npy" and found.options == {"frame_layout": "hands_pose75:xy"}
    result = run("import", "auto", src, "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert "(30, 150)" in result.text
    samples = _by_id(tmp_path / "c")
    assert len(samples) == 173 and len({e.label for e, _ in samples.values()}) == 9
    entry, seq = samples["hello/MVI_9954_skip_2"]
    assert entry.label == "hello" and seq.layout == "hands_pose75"
    raw = np.load(src / "hello" / "MVI_9954_skip_2.npy")
    lh = HANDS_POSE75.slice("left_hand").start
    present = raw[:, 2 * lh : 2 * lh + 2].any(axis=1)
    np.testing.assert_allclose(seq.data[present, lh, :2], raw[present, 2 * lh : 2 * lh + 2], 1e-6)
    assert np.isnan(seq.data[~present, lh]).all()
    assert np.isnan(seq.data[..., 2]).all()  # 2-D source
    # the same files once more: nothing to do
    again = import_format("npy", src, tmp_path / "c", frame_layout="hands_pose75:xy")
    assert (again.imported, again.skipped) == (0, 173)


def test_npy_needs_a_frame_layout_and_says_what_was_expected(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((5, 149)))
    with pytest.raises(DatasetError, match="needs --frame-layout"):
        import_format("npy", tmp_path, tmp_path / "c")
    summary = import_format("npy", tmp_path, tmp_path / "c", frame_layout="hands_pose75:xy")
    assert "shape (5, 149): expected (frames, 150)" in summary.failures[0][1]
    with pytest.raises(DatasetError, match="--label does not apply"):
        import_format("npy", tmp_path, tmp_path / "c", frame_layout="mp258", label="x")


# ---- GISLR -------------------------------------------------------------------------------------
GISLR_TYPES = (("face", 468), ("left_hand", 21), ("pose", 33), ("right_hand", 21))


def write_gislr_parquet(path, n_frames: int, rng, shuffle: bool = False):
    pa = pytest.importorskip("pyarrow", reason='GISLR needs pyarrow (pip install "islr[gislr]")')
    import pyarrow.parquet as pq

    types = [t for t, k in GISLR_TYPES for _ in range(k)]
    index = np.concatenate([np.arange(k) for _, k in GISLR_TYPES]).astype(np.int16)
    frame = np.repeat(np.arange(30, 30 + n_frames, dtype=np.int16), 543)
    xyz = rng.random((n_frames * 543, 3))
    xyz[np.tile(np.array(types) == "left_hand", n_frames) & (frame % 2 == 0)] = np.nan
    order = rng.permutation(len(frame)) if shuffle else np.arange(len(frame))
    table = pa.table(
        {
            "frame": frame[order],
            "row_id": [
                f"{f}-{t}-{i}"
                for f, t, i in zip(frame, types * n_frames, np.tile(index, n_frames), strict=True)
            ],  # fmt: skip
            "type": np.array(types * n_frames)[order],
            "landmark_index": np.tile(index, n_frames)[order],
            "x": xyz[order, 0],
            "y": xyz[order, 1],
            "z": xyz[order, 2],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return xyz.reshape(n_frames, 543, 3)


def test_gislr_parquet_with_participant_as_signer(tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "asl-signs"
    rows = ["path,participant_id,sequence_id,sign"]
    raw = {}
    for i, (participant, sign) in enumerate([(26734, "TV"), (26734, "dad"), (37055, "TV")]):
        rel = f"train_landmark_files/{participant}/{1000 + i}.parquet"
        raw[f"{participant}/{1000 + i}"] = write_gislr_parquet(src / rel, 5 + i, rng, i == 1)
        rows.append(f"{rel},{participant},{1000 + i},{sign}")
    rows.append("train_landmark_files/99/1.parquet,99,1,gone")  # listed, but no file
    (src / "train.csv").write_text("\n".join(rows) + "\n")
    assert detect_format(src).format == "gislr"
    result = run("import", "auto", src, "--out", tmp_path / "c", "--split", "train")
    assert result.exit_code == 0, result.output
    assert "gislr" in result.text and "3 imported" in result.text and "1 failed" in result.text
    samples = _by_id(tmp_path / "c")
    assert set(samples) == set(raw)
    entry, seq = samples["26734/1001"]  # written with its rows shuffled
    assert entry.extra["signer"] == "26734" and entry.label == "dad" and entry.split == "train"
    assert seq.frame_indices.tolist() == list(range(6))
    face_nose = HOLISTIC136.index("face", 1)
    np.testing.assert_allclose(seq.data[:, face_nose], raw["26734/1001"][:, 1], rtol=1e-6)
    pose = seq.component("pose")
    np.testing.assert_allclose(pose, raw["26734/1001"][:, 489:522], rtol=1e-6)
    left = seq.component("left_hand")
    assert np.isnan(left[0::2]).all() and not np.isnan(left[1::2]).any()
    failures = dict(LandmarkCache(tmp_path / "c").failures())
    assert "train_landmark_files/99/1.parquet" in failures


# ---- OpenHands ---------------------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_openhands_pickles_and_a_pickle_that_runs_code(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    folder = tmp_path / "src" / "Adjectives" / "1. loud"
    folder.mkdir(parents=True)
    kps = rng.random((10, 75, 3))
    kps[:, 33:54] = 0  # left hand not detected
    (folder / "MVI_5177.pkl").write_bytes(
        pickle.dumps({"keypoints": kps, "confidences": rng.random((10, 75))}, protocol=4)
    )
    pixels = kps.copy()
    pixels[..., 0] *= 1080
    pixels[..., 1] *= 1920
    (folder / "MVI_5178.pkl").write_bytes(pickle.dumps({"keypoints": pixels, "confidences": 0}))
    (folder / "MVI_5179.pkl").write_bytes(pickle.dumps({"keypoints": _Evil()}))
    monkeypatch.chdir(tmp_path)
    summary = import_format("openhands", tmp_path / "src", tmp_path / "c")
    assert summary.imported == 2 and not (tmp_path / "pwned").exists()
    assert "only NumPy arrays are read" in summary.failures[0][1]
    samples = _by_id(tmp_path / "c")
    entry, seq = samples["Adjectives/1. loud/MVI_5177"]
    assert entry.label == "loud" and seq.layout == "hands_pose75"
    np.testing.assert_allclose(seq.component("pose"), kps[:, :33], rtol=1e-6)
    assert np.isnan(seq.component("left_hand")).all()
    _, scaled = samples["Adjectives/1. loud/MVI_5178"]
    np.testing.assert_allclose(scaled.component("pose")[..., :2], kps[:, :33, :2], rtol=1e-5)
    assert scaled.extra["pixel_scale"] == [1080, 1920]


# ---- bad files ---------------------------------------------------------------------------------
def _good_inputs(fmt: str, src, n: int, rng):
    """``n`` good inputs of ``fmt`` under ``src``, and the suffix of one file."""
    src.mkdir(parents=True, exist_ok=True)
    if fmt == "include-json":
        for i in range(n):
            d = _include_json(uid=f"loud_MVI_{i}")
            (src / f"f{i:02d}.json").write_text(json.dumps(d))
        return ".json"
    if fmt == "seed-npy":
        labels = {}
        for i in range(n):
            np.save(src / f"f{i:02d}.npy", _seed_frames(12, rng))
            labels[f"f{i:02d}.npy"] = "hello"
        labels["zz.npy"] = "hello"
        (src / "file_to_label.json").write_text(json.dumps(labels))
        return ".npy"
    if fmt == "npy":
        for i in range(n):
            np.save(src / f"f{i:02d}.npy", rng.random((8, 150)))
        return ".npy"
    if fmt == "pose":
        football = shared_data("videos", "FOOTBALL.mediapipe_holistic.pose").read_bytes()
        for i in range(n):
            (src / f"f{i:02d}.pose").write_bytes(football)
        return ".pose"
    if fmt == "openhands":
        for i in range(n):
            (src / f"f{i:02d}.pkl").write_bytes(pickle.dumps({"keypoints": rng.random((6, 75, 3))}))
        return ".pkl"
    raise AssertionError(fmt)


BAD_JSON = {
    "nested": "[" * 100_000 + "]" * 100_000,
    "uid with ..": json.dumps(_include_json(uid="../../escape")),
    "uid with NUL": json.dumps(_include_json(uid="loud_MVI_\x00x")),
    "256-character uid": json.dumps(_include_json(uid="u" * 256)),
    "huge integer": '{"uid": ' + "9" * 5000 + "}",
    "truncated": json.dumps(_include_json(uid="loud_MVI_t"))[:200],
    "empty": "",
    "wrong shape": json.dumps(_include_json(hand_shape=20, uid="loud_MVI_w")),
}


@pytest.mark.parametrize("kind", list(BAD_JSON))
def test_one_bad_include_json_among_20(tmp_path, kind):
    src = tmp_path / "src"
    _good_inputs("include-json", src, 19, np.random.default_rng(0))
    (src / "zz.json").write_text(BAD_JSON[kind])
    result = run("import", "include-json", src, "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert "19 imported" in result.text and "1 failed" in result.text
    assert list(dict(LandmarkCache(tmp_path / "c").failures())) == ["zz.json"]
    assert not (tmp_path / "escape.npz").exists()


@pytest.mark.parametrize("fmt", ["seed-npy", "npy", "pose", "openhands"])
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_one_bad_file_among_20(tmp_path, fmt, damage):
    src = tmp_path / "src"
    suffix = _good_inputs(fmt, src, 19, np.random.default_rng(0))
    good = (src / f"f00{suffix}").read_bytes()
    (src / f"zz{suffix}").write_bytes(good[: len(good) // 2] if damage == "truncated" else b"")
    options = {"frame_layout": "hands_pose75:xy"} if fmt == "npy" else {}
    summary = import_format(fmt, src, tmp_path / "c", **options)
    assert summary.imported == 19, summary.failures
    assert [f for f, _ in summary.failures] == [f"zz{suffix}"]
    assert list(dict(LandmarkCache(tmp_path / "c").failures())) == [f"zz{suffix}"]


def test_truncated_and_empty_gislr_parquet(tmp_path):
    rng = np.random.default_rng(4)
    rows = ["path,participant_id,sequence_id,sign"]
    for i in range(4):
        write_gislr_parquet(tmp_path / f"p/{i}.parquet", 3, rng)
        rows.append(f"p/{i}.parquet,7,{i},go")
    data = (tmp_path / "p/2.parquet").read_bytes()
    (tmp_path / "p/2.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "p/3.parquet").write_bytes(b"")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    summary = import_format("gislr", tmp_path, tmp_path / "c")
    assert summary.imported == 2
    assert sorted(f for f, _ in summary.failures) == ["p/2.parquet", "p/3.parquet"]
    assert all("not a readable GISLR parquet file" in r for _, r in summary.failures)


def test_rerun_skips_unchanged_and_retries_fixed_files(tmp_path):
    src = tmp_path / "src"
    _good_inputs("npy", src, 5, np.random.default_rng(0))
    (src / "zz.npy").write_bytes(b"")
    first = import_format("npy", src, tmp_path / "c", frame_layout="hands_pose75:xy", workers=3)
    assert (first.imported, len(first.failures)) == (5, 1)
    np.save(src / "zz.npy", np.random.default_rng(1).random((4, 150)))
    second = import_format("npy", src, tmp_path / "c", frame_layout="hands_pose75:xy")
    assert (second.imported, second.skipped, len(second.failures)) == (1, 5, 0)
    assert LandmarkCache(tmp_path / "c").failures() == []
    # another stored layout is a change: the files are converted again
    third = import_format(
        "npy", src, tmp_path / "c", frame_layout="hands_pose75:xy", layout="holistic136"
    )
    assert third.imported == 6


# ---- export and back ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["npy", "pose"])
def test_export_data_round_trip(tmp_path, fmt):
    src = shared_data(*MPDATA)
    cache = tmp_path / "c"
    import_format("mpdata", src, cache, image_size=(640, 480))
    result = run("export-data", cache, "--format", fmt, "--out", tmp_path / "x")
    assert result.exit_code == 0, result.output
    assert "90 " + fmt in result.text
    if fmt == "npy":
        options = {"frame_layout": str(tmp_path / "x" / "frame_layout.yaml")}
        options["labels"] = str(tmp_path / "x" / "labels.csv")
        back = import_format("npy", tmp_path / "x", tmp_path / "back", **options)
    else:
        back = import_format("pose", tmp_path / "x", tmp_path / "back")
    assert back.imported == 90 and not back.failures
    before, after = _by_id(cache), _by_id(tmp_path / "back")
    assert before.keys() == after.keys()
    for key, (entry, seq) in before.items():
        entry2, seq2 = after[key]
        assert entry2.label == entry.label
        np.testing.assert_allclose(seq2.data, seq.data, rtol=1e-5, atol=1e-6, equal_nan=True)
    if fmt == "pose":
        assert after["hello/0"][1].extra["image_width"] == 640


def test_auto_says_when_it_does_not_know(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    result = run("import", "auto", tmp_path, "--out", tmp_path / "c")
    assert result.exit_code == 2 and "no known landmark format" in result.text
    np.save(tmp_path / "a.npy", np.zeros((3, 7)))
    with pytest.raises(DatasetError, match=r"shape \(3, 7\)"):
        detect_format(tmp_path)


# ---- the imported data in use ------------------------------------------------------------------
def test_imported_mpdata_predicts_the_same_from_cli_and_server(tmp_path):
    """Real MP_Data sequences, imported: `islr predict` on their cache files and the same
    landmarks through POST /v1/predict give the same signs and probabilities, and both say that
    the person sitting idle (no hand in view) is no sign while their hello is one."""
    from islr.serving.app import create_app
    from tests.conftest import local_client

    src = shared_data(*MPDATA)
    import_format("mpdata", src, tmp_path / "c", image_size=(640, 480))
    cache = LandmarkCache(tmp_path / "c")
    app = create_app("include50", onnx_cache=tmp_path / "onnx")
    for sample_id, signing in (("hello/0", True), ("idle/0", False)):
        entry = next(e for e in cache.entries() if e.id == sample_id)
        seq = cache.load(entry)
        result = run("predict", "include50", tmp_path / "c" / entry.path, "--json", "-k", "5")
        assert result.exit_code == 0, result.output
        cli = json.loads(result.output.strip().splitlines()[-1])
        frames = [
            [None if np.isnan(p).any() else [float(v) for v in p] for p in frame]
            for frame in seq.data
        ]
        body = {"frames": frames, "layout": "holistic136", "image_width": 640, "image_height": 480}
        with local_client(app) as client:
            response = client.post("/v1/predict", json={**body, "top_k": 5})
        assert response.status_code == 200, response.text
        served = response.json()
        assert [t["label"] for t in served["top"]] == [t["label"] for t in cli["top"]]
        np.testing.assert_allclose(
            [t["prob"] for t in served["top"]],
            [t["prob"] for t in cli["top"]],
            rtol=1e-5,
            atol=1e-6,
        )
        assert served["signing"] is cli["signing"] is signing, sample_id


@pytest.mark.slow
def test_other_signers_import_train_and_evaluate_from_the_cli(tmp_path):
    """../shared/data/other-signers (MP_Data 1662 and include-greetings (30, 150)) imported into
    one cache, split, trained on and evaluated, all through the CLI."""
    from tests.conftest import need_torch
    from tests.test_training import TINY

    need_torch()
    mpdata, greetings = shared_data(*MPDATA), shared_data(*GREETINGS)
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    first = run("import", "auto", mpdata, "--out", cache, "--image-size", "640x480")
    assert first.exit_code == 0 and "90 imported" in first.text, first.output
    second = run("import", "auto", greetings, "--out", cache, "--layout", "holistic136")
    assert second.exit_code == 0 and "173 imported" in second.text, second.output
    labels = run("labels", cache, "--split", "stratified", "--val-frac", "0.25")
    assert labels.exit_code == 0, labels.output
    overrides = sum((["--set", s] for s in TINY), [])
    trained = run("train", "--data", cache, "--out", run_dir, "--epochs", "3", *overrides)
    assert trained.exit_code == 0, trained.output
    evaluated = run("evaluate", run_dir, "--data", cache, "--split", "val")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run_dir / "eval-val" / "metrics.json").read_text())
    assert metrics["n"] == sum(e.split == "val" for e in LandmarkCache(cache).entries())
    assert metrics["n"] > 50


def test_gislr_without_pyarrow_names_the_extra(tmp_path):
    from tests.test_extras import assert_one_line_error, islr_without

    (tmp_path / "train.csv").write_text("path,participant_id,sequence_id,sign\n")
    done = islr_without(
        ("pyarrow",), "import", "gislr", str(tmp_path), "--out", str(tmp_path / "c")
    )
    expected = 'error: islr import gislr needs pyarrow: pip install "islr[gislr]"'
    assert_one_line_error(done, expected)


@pytest.mark.parametrize("fmt", ["include-json", "pose", "openhands", "seed-npy", "npy"])
def test_auto_recognises_each_format(tmp_path, fmt):
    _good_inputs(fmt, tmp_path / "src", 2, np.random.default_rng(0))
    found = detect_format(tmp_path / "src")
    assert found.format == fmt, found.reason
    assert found.reason


def test_npy_of_points_by_coordinates(tmp_path):
    values = np.random.default_rng(5).random((6, 75, 2))
    np.save(tmp_path / "a.npy", values)
    summary = import_format("npy", tmp_path, tmp_path / "c", frame_layout="hands_pose75:xy")
    assert summary.imported == 1
    (seq,) = load_cache_arrays(tmp_path / "c")[1]
    np.testing.assert_allclose(seq.data[..., :2], values, rtol=1e-6)


def test_mpdata_truncated_frame_is_named(tmp_path):
    _write_mpdata(tmp_path, {"hi/0": [258] * 4, "hi/1": [258] * 4}, np.random.default_rng(6))
    frame = tmp_path / "MP_Data" / "hi" / "1" / "2.npy"
    frame.write_bytes(frame.read_bytes()[:100])
    summary = import_format("mpdata", tmp_path / "MP_Data", tmp_path / "c")
    assert summary.imported == 1
    assert summary.failures[0][0] == "hi/1"
    assert summary.failures[0][1].startswith("frame 2.npy: not a readable .npy array")


def test_export_data_errors_and_another_frame_layout(tmp_path):
    src = tmp_path / "src"
    _good_inputs("npy", src, 3, np.random.default_rng(7))
    import_format("npy", src, tmp_path / "c", frame_layout="hands_pose75:xy")
    result = run("export-data", tmp_path / "c", "--format", "csv", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "unknown export format" in result.text
    result = run("export-data", tmp_path / "c", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "another folder" in result.text
    # the other layout in the same cache: --frame-layout is needed, and mp258 is 258 wide
    import_format("npy", src, tmp_path / "c", frame_layout="hands_pose75:xy", layout="holistic136")
    np.save(src / "sub.npy", np.random.default_rng(8).random((4, 150)))
    import_format("npy", src / "sub.npy", tmp_path / "c", frame_layout="hands_pose75:xy")
    result = run("export-data", tmp_path / "c", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "several layouts" in result.text
    result = run("export-data", tmp_path / "c", "--out", tmp_path / "x", "--frame-layout", "mp258")
    assert result.exit_code == 0, result.output
    exported = np.load(tmp_path / "x" / "f00.npy")
    assert exported.shape == (8, 258)
    assert (exported[:, 3::4][:, :33] == 1).all()  # visibility 1 where the pose is present


def test_two_inputs_with_one_sample_id(tmp_path):
    rng = np.random.default_rng(9)
    np.save(tmp_path / "a.npy", rng.random((4, 150)))
    (tmp_path / "a.NPY").write_bytes((tmp_path / "a.npy").read_bytes())  # the same id: "a"
    summary = import_format("npy", tmp_path, tmp_path / "c", frame_layout="hands_pose75:xy")
    assert summary.imported == 1 and len(summary.failures) == 1
    failed, reason = summary.failures[0]
    assert "sample id 'a' was already imported from" in reason
    (entry,) = LandmarkCache(tmp_path / "c").entries()
    assert entry.source != failed and reason.endswith("import one of the two into another cache")
