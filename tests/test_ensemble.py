"""Ensembles of classifiers trained alike: probabilities averaged, one checkpoint, one ONNX file
(int8 keeps every member's stem in fp32)."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
onnx = pytest.importorskip("onnx", reason="needs onnx, the [train] extra")

from islr.errors import ModelError  # noqa: E402
from islr.export import export_onnx  # noqa: E402
from islr.inference import Engine  # noqa: E402
from islr.models import ensemble_checkpoints, load_classifier  # noqa: E402
from tests.test_inference_support import tiny_run  # noqa: E402


def _batch(engine: Engine, n: int = 5) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = rng.random((n, engine.seq_len, engine.n_points, engine.n_coords), dtype=np.float32)
    x[0, :, 33:54] = np.nan
    return x


def test_ensemble_averages_its_members_probabilities(tmp_path):
    runs = [tiny_run(tmp_path / f"m{s}", seed=s) for s in range(3)]
    path = ensemble_checkpoints([r / "best.pt" for r in runs], tmp_path / "ens.pt", note="x")
    model, spec = load_classifier(path)
    assert spec.members == 3 and spec.extra["note"] == "x"
    members = [Engine.load(r) for r in runs]
    ensemble = Engine.load(path)
    x = _batch(ensemble)
    expected = np.mean([m.predict_prepared(x) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict_prepared(x), expected, atol=1e-6)
    assert ensemble.metadata["members"] == 3 and members[0].metadata["members"] == 1


def test_ensemble_exports_to_onnx_fp32_and_int8(tmp_path):
    runs = [tiny_run(tmp_path / f"m{s}", seed=s) for s in range(2)]
    path = ensemble_checkpoints([r / "best.pt" for r in runs], tmp_path / "ens.pt")
    torch_engine = Engine.load(path)
    x = _batch(torch_engine)
    fp32 = export_onnx(path, tmp_path / "ens.onnx")
    np.testing.assert_allclose(
        Engine.load(fp32.path).logits_batch(x), torch_engine.logits_batch(x), atol=1e-4
    )
    onnx_embedding = Engine.load(fp32.path).embed_prepared(x)
    np.testing.assert_allclose(onnx_embedding, torch_engine.embed_prepared(x), atol=1e-5)
    assert onnx_embedding.shape[1] == 2 * Engine.load(runs[0]).embedding_dim  # concat of members
    int8 = export_onnx(path, tmp_path / "ens8.onnx", int8=True)
    graph = onnx.load(str(int8.path)).graph
    stems = [n for n in graph.node if n.op_type == "MatMul" and "stem" in n.name]
    assert len(stems) == 2 and len({n.input[0] for n in stems}) == 1  # both stay fp32
    assert any(n.op_type == "MatMulInteger" for n in graph.node)
    assert int8.bytes < fp32.bytes
    p8, p32 = Engine.load(int8.path).predict_prepared(x), torch_engine.predict_prepared(x)
    assert np.abs(p8 - p32).max() < 0.05


def test_members_must_be_trained_alike(tmp_path):
    a = tiny_run(tmp_path / "a")
    b = tiny_run(tmp_path / "b", labels=("a", "b", "c", "d", "z"))
    with pytest.raises(ModelError, match="trained alike"):
        ensemble_checkpoints([a / "best.pt", b / "best.pt"], tmp_path / "e.pt")
    e = ensemble_checkpoints([a / "best.pt", a / "best.pt"], tmp_path / "e.pt")
    with pytest.raises(ModelError, match="already an ensemble"):
        ensemble_checkpoints([e, a / "best.pt"], tmp_path / "e2.pt")
