"""The inference engine (checkpoint and ONNX backends) and `islr predict`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from islr.cli import build_app
from islr.errors import InputError, ModelError
from islr.export import export_onnx
from islr.features import prepare_model_input
from islr.inference import Engine
from islr.landmarks import LandmarkSequence, get_layout, save_sequence
from islr.streaming import top_labels
from tests.conftest import shared_data
from tests.test_inference_support import synthetic_run, synthetic_sign, tiny_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def engines(run_dir, tmp_path_factory):
    onnx_path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(run_dir, onnx_path)
    return Engine.load(run_dir, threads=1), Engine.load(onnx_path, threads=1)


def _holistic_sequence(n_frames: int = 25, seed: int = 0) -> LandmarkSequence:
    rng = np.random.default_rng(seed)
    data = rng.random((n_frames, get_layout("holistic136").n_points, 3), dtype=np.float32)
    data[: n_frames // 2, :21] = np.nan  # left hand missing for a while
    return LandmarkSequence(data, "holistic136", extra={"image_width": 1280, "image_height": 720})


def test_both_backends_share_the_api(engines):
    torch_engine, onnx_engine = engines
    assert (torch_engine.backend, onnx_engine.backend) == ("torch", "onnx")
    for engine in engines:
        assert engine.labels == ["a", "b", "c", "d", "e"]
        assert (engine.layout, engine.seq_len, engine.n_points, engine.n_coords) == (
            "hands_pose75",
            16,
            75,
            3,
        )
        assert engine.metadata["resample"] == "nearest-centre"
    assert torch_engine.metadata["layout"] == onnx_engine.metadata["layout"]


def test_predict_same_on_both_backends_and_any_layout(engines):
    seq = _holistic_sequence()
    torch_top = engines[0].predict(seq, top_k=3)
    onnx_top = engines[1].predict(seq, top_k=3)
    assert [label for label, _ in torch_top] == [label for label, _ in onnx_top]
    np.testing.assert_allclose(
        [p for _, p in torch_top], [p for _, p in onnx_top], rtol=0, atol=1e-5
    )
    probs = [p for _, p in torch_top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_sequence_and_prepared_array_agree(engines):
    """The engine prepares input exactly as training does (layout, aspect, resampling)."""
    engine = engines[1]
    seq = _holistic_sequence(40)
    prepared = prepare_model_input(seq, "hands_pose75", 16, 3)
    np.testing.assert_array_equal(engine.prepare(seq), prepared)
    direct = engine.predict_prepared(prepared[None])[0]
    np.testing.assert_allclose(engine.predict_batch([seq])[0], direct, atol=1e-7)
    # a raw array in the model's layout is taken as is (T frames, resampled)
    raw = np.random.default_rng(1).random((9, 75, 2), dtype=np.float32)
    raw[3] = np.nan
    assert engine.prepare(raw).shape == (16, 75, 3)


def test_batch_equals_one_by_one(engines):
    engine = engines[1]
    seqs = [_holistic_sequence(20 + 7 * i, seed=i) for i in range(5)]
    batch = engine.predict_batch(seqs)
    assert batch.shape == (5, 5)
    np.testing.assert_allclose(batch.sum(axis=1), 1, atol=1e-5)
    for i, seq in enumerate(seqs):
        np.testing.assert_allclose(engine.predict_batch([seq])[0], batch[i], atol=1e-5)
    assert engine.predict_batch([]).shape == (0, 5)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((10, 75)), "3-D array"),
        (np.zeros((10, 74, 3)), r"shape \(10, 74, 3\)"),
        (np.zeros((10, 75, 4)), "2 or 3 coordinates"),
        (np.zeros((0, 75, 3)), "no frames"),
        (np.full((4, 75, 3), np.inf), "Inf"),
        ([["x"]], "must be numbers"),
    ],
)
def test_bad_input_is_a_clear_error(engines, array, message):
    with pytest.raises(InputError, match=message):
        engines[1].predict(array)


def test_bad_top_k_and_bad_models(engines, tmp_path):
    with pytest.raises(InputError, match="top_k"):
        engines[0].predict(np.zeros((3, 75, 3)), top_k=0)
    with pytest.raises(ModelError, match="no such ONNX model"):
        Engine.load(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        Engine.load(tmp_path / "junk.onnx")
    with pytest.raises(ModelError, match="no such checkpoint"):
        Engine.load(tmp_path / "no-run")


def test_onnx_without_islr_metadata_is_refused(run_dir, tmp_path):
    import onnx

    path = tmp_path / "bare.onnx"
    export_onnx(run_dir, path)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="islr export"):
        Engine.load(path)


def test_import_islr_inference_stays_light():
    code = (
        "import sys, islr.inference, islr.serving;"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'mediapipe', 'cv2', 'fastapi')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_predict_landmark_files_and_a_bad_one(run_dir, tmp_path):
    good = save_sequence(_holistic_sequence(), tmp_path / "clip.npz")
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"nope")
    result = CliRunner().invoke(
        build_app(), ["predict", str(run_dir), str(good), str(bad), "--top-k", "2", "--json"]
    )
    assert result.exit_code == 1, result.output  # one bad file: reported, the rest predicted
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_input = {r["input"]: r for r in records}
    assert len(by_input[str(good)]["top"]) == 2 and by_input[str(good)]["n_frames"] == 25
    assert by_input[str(good)]["signing"] is True  # hands in view (islr.inference.gate)
    assert "not an islr landmark file" in by_input[str(bad)]["error"]

    table = CliRunner().invoke(build_app(), ["predict", str(run_dir), str(good)])
    assert table.exit_code == 0 and "probability" in table.stdout
    missing = CliRunner().invoke(build_app(), ["predict", str(tmp_path / "nope"), str(good)])
    assert missing.exit_code == 2 and "no such checkpoint" in " ".join(missing.output.split())


@pytest.mark.slow
def test_trained_engine_recognises_synthetic_signs():
    engine = Engine.load(synthetic_run())
    seqs = [synthetic_sign(pos, 900 + k, signer=5) for pos in range(3) for k in range(3)]
    predicted = engine.predict_batch(seqs).argmax(axis=1)
    assert list(predicted) == [pos for pos in range(3) for _ in range(3)]


@pytest.mark.slow
def test_cli_predict_on_a_real_video_and_a_pose_file(run_dir, video_extra):
    video = shared_data("videos", "test_video.mp4")
    pose = shared_data("videos", "FOOTBALL.mediapipe_holistic.pose")
    result = CliRunner().invoke(
        build_app(), ["predict", str(run_dir), str(video), str(pose), "--json"]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["n_frames"] for r in records] == [58, 62]


def test_top_labels_orders_by_probability_and_breaks_ties_by_label_order():
    probs = np.array([0.1, 0.4, 0.1, 0.4], dtype=np.float32)
    labels = ["a", "b", "c", "d"]
    top = top_labels(probs, labels, 3)
    assert [(label, round(p, 6)) for label, p in top] == [("b", 0.4), ("d", 0.4), ("a", 0.1)]
    assert [label for label, _ in top_labels(probs, labels, 10)] == ["b", "d", "a", "c"]
    with pytest.raises(InputError, match="top_k must be at least 1"):
        top_labels(probs, labels, 0)


def test_engine_and_training_threads_are_set_around_the_work_and_restored(run_dir):
    import torch

    from islr.models.threads import torch_threads

    before = torch.get_num_threads()
    with torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    engine = Engine.load(run_dir, threads=before + 1)
    engine.predict(np.zeros((5, 75, 3), dtype=np.float32))
    assert torch.get_num_threads() == before
