"""`islr export`: ONNX parity with PyTorch for every registered model, the metadata contract,
int8 quantisation (and its top-1 agreement on real INCLUDE-50 validation data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
pytest.importorskip("onnx", reason="needs onnx, the [train] extra")
import onnx  # noqa: E402
from typer.testing import CliRunner

from islr.cli import build_app
from islr.errors import ModelError
from islr.export import export_onnx
from islr.inference import Engine
from islr.modelfile import read_onnx_metadata
from islr.models import model_names
from tests.conftest import shared_data
from tests.test_inference_support import PLAIN_TRAINING, model_overrides, tiny_run


def _inputs_with_nan(engine: Engine, batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((batch, engine.seq_len, engine.n_points, engine.n_coords), dtype=np.float32)
    x[0, :, 33:54] = np.nan  # a hand never detected
    x[-1, ::2, 54:] = np.nan  # the other hand lost every other frame
    x[batch // 2, 3:7] = np.nan  # whole frames missing
    return x


@pytest.mark.parametrize("name", model_names())
def test_onnx_matches_pytorch_with_nan_and_any_batch(name, tmp_path):
    run = tiny_run(tmp_path / "run", name=name)
    result = export_onnx(run, tmp_path / "model.onnx")
    torch_engine, onnx_engine = Engine.load(run), Engine.load(result.path)
    for batch in (1, 7):
        x = _inputs_with_nan(torch_engine, batch)
        expected = torch_engine.logits_batch(x)
        got = onnx_engine.logits_batch(x)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", model_names())
def test_onnx_embedding_output_matches_pytorch(name, tmp_path):
    run = tiny_run(tmp_path / "run", name=name)
    result = export_onnx(run, tmp_path / "model.onnx")
    torch_engine, onnx_engine = Engine.load(run), Engine.load(result.path)
    assert onnx_engine.embedding_dim == torch_engine.embedding_dim
    assert result.metadata["embedding"]["dim"] == torch_engine.embedding_dim
    for batch in (1, 7):
        x = _inputs_with_nan(torch_engine, batch)
        t_logits, t_emb = torch_engine.logits_and_embedding_batch(x)
        o_logits, o_emb = onnx_engine.logits_and_embedding_batch(x)
        assert o_emb.shape == (batch, torch_engine.embedding_dim)
        np.testing.assert_allclose(o_emb, t_emb, rtol=0, atol=1e-5)
        np.testing.assert_allclose(o_logits, t_logits, rtol=0, atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(o_emb, axis=1), 1, atol=1e-5)


def test_calibration_and_known_prototypes_travel_into_the_onnx_file(tmp_path):
    import torch

    from islr.modelfile import Calibration, EmbeddingReference

    run = tiny_run(tmp_path / "run")
    payload = torch.load(run / "best.pt", weights_only=False)
    prototypes = np.eye(5, 64, dtype=np.float32)
    reference = EmbeddingReference(Calibration(12.5, -9.0), prototypes, 0.8, "test")
    payload["extra"]["embedding"] = reference.to_dict()
    torch.save(payload, run / "best.pt")
    for int8 in (False, True):
        path = export_onnx(run, tmp_path / f"m{int8}.onnx", int8=int8).path
        for engine in (Engine.load(path), Engine.load(run)):
            assert engine.reference.calibration == Calibration(12.5, -9.0)
            assert engine.reference.duplicate_similarity == 0.8
            np.testing.assert_array_equal(engine.reference.known_prototypes, prototypes)
        meta = read_onnx_metadata(path)["embedding"]
        assert meta["calibration"] == {"scale": 12.5, "bias": -9.0} and meta["known_prototypes"]


def test_graph_and_metadata_follow_the_contract(tmp_path):
    run = tiny_run(tmp_path / "run", layout="holistic136", seq_len=12, n_coords=3)
    path = export_onnx(run, tmp_path / "m.onnx").path
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["landmarks"]
    assert [o.name for o in proto.graph.output] == ["logits", "embedding"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [12, 136, 3]
    assert {o.domain: o.version for o in proto.opset_import}[""] == 17
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["islr"])
    assert meta == read_onnx_metadata(path)
    assert meta["labels"] == ["a", "b", "c", "d", "e"]
    assert meta["layout"]["name"] == "holistic136"
    assert [p["component"] for p in meta["layout"]["parts"]] == [
        "left_hand", "right_hand", "pose", "face",
    ]  # fmt: skip
    assert len(meta["layout"]["parts"][3]["indices"]) == 61
    assert (meta["n_points"], meta["n_coords"], meta["seq_len"]) == (136, 3, 12)
    assert meta["resample"] == "nearest-centre" and meta["model"] == "conv_transformer"
    assert meta["features"]["seq_len"] == 12 and "version" in meta


def test_int8_keeps_metadata_is_smaller_and_close(tmp_path):
    run = tiny_run(tmp_path / "run")
    fp32 = export_onnx(run, tmp_path / "fp32.onnx")
    int8 = export_onnx(run, tmp_path / "int8.onnx", int8=True)
    assert int8.bytes < fp32.bytes
    assert int8.metadata["quantization"] == "dynamic-int8"
    assert {k: v for k, v in int8.metadata.items() if k != "quantization"} == fp32.metadata
    a, b = Engine.load(fp32.path), Engine.load(int8.path)
    x = _inputs_with_nan(a, 4)
    assert np.abs(a.predict_prepared(x) - b.predict_prepared(x)).max() < 0.05


def test_int8_leaves_logging_alone_and_drops_the_pre_process_tag(tmp_path, caplog):
    import logging

    run = tiny_run(tmp_path / "run")
    root_level = logging.getLogger().level
    with caplog.at_level(logging.WARNING):
        int8 = export_onnx(run, tmp_path / "int8.onnx", int8=True)
    assert logging.getLogger().level == root_level
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    keys = [p.key for p in onnx.load(str(int8.path)).metadata_props]
    assert "islr" in keys and "onnx.quant.pre_process" not in keys


def test_models_whose_layouts_share_a_name_live_side_by_side(tmp_path):
    """An ONNX model brings its layout in its metadata; loading it registers nothing."""
    from islr.landmarks import get_layout, layout_names

    before = layout_names()
    engines = {}
    for layout in ("hands_pose75", "holistic136"):
        run = tiny_run(tmp_path / layout, layout=layout)
        proto = onnx.load(str(export_onnx(run, tmp_path / f"{layout}.onnx").path))
        meta = json.loads(proto.metadata_props[0].value)
        meta["layout"]["name"] = "custom"  # both models call their different layouts "custom"
        proto.metadata_props[0].value = json.dumps(meta)
        original = Engine.load(tmp_path / f"{layout}.onnx")
        engines[layout] = (original, Engine.from_onnx_bytes(proto.SerializeToString()))
    assert layout_names() == before
    x = np.random.default_rng(0).random((20, 136, 3), dtype=np.float32)
    from islr.landmarks import LandmarkSequence

    seq = LandmarkSequence(x, "holistic136")
    for layout, (original, renamed) in engines.items():
        assert renamed.layout == "custom" and renamed.n_points == get_layout(layout).n_points
        assert renamed.describe()["layout"]["parts"] == get_layout(layout).to_dict()["parts"]
        np.testing.assert_allclose(
            renamed.predict_batch([seq]), original.predict_batch([seq]), atol=1e-6
        )


def test_export_errors_and_atomic_write(tmp_path):
    run = tiny_run(tmp_path / "run")
    with pytest.raises(ModelError, match=r"must end in \.onnx"):
        export_onnx(run, tmp_path / "model.bin")
    with pytest.raises(ModelError, match="no such checkpoint"):
        export_onnx(tmp_path / "nothing", tmp_path / "m.onnx")
    export_onnx(run, tmp_path / "out" / "m.onnx")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["m.onnx"]  # no temp files left


def test_cli_export_reports_size_and_parity(tmp_path):
    run = tiny_run(tmp_path / "run", name="seed_transformer")
    result = CliRunner().invoke(
        build_app(), ["export", str(run), "--out", str(tmp_path / "m.onnx"), "--int8"]
    )
    assert result.exit_code == 0, result.output
    assert "(int8)" in result.stdout and "vs PyTorch" in result.stdout
    assert Engine.load(tmp_path / "m.onnx").labels == ["a", "b", "c", "d", "e"]
    bad = CliRunner().invoke(build_app(), ["export", str(run), "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2 and "must end in .onnx" in bad.output


@pytest.mark.slow
def test_int8_agrees_with_fp32_on_include50_val(tmp_path):
    """A model trained briefly on INCLUDE-50 train; int8 vs fp32 top-1 on the 77 val videos."""
    from islr.datasets.importers import import_include_json
    from islr.landmarks import load_cache_arrays
    from islr.training import load_config, train

    root = shared_data("include50")
    cache = tmp_path / "cache"
    import_include_json(root / "train", cache, split="train")
    import_include_json(root / "val", cache, split="val")
    val_entries, val_seqs = load_cache_arrays(cache, "val")
    # 14 epochs of plain training: ~85% val top-1, no near-ties
    overrides = [
        "features.seq_len=24",
        *model_overrides("conv_transformer", dim=48, stages=1, conv_blocks=2),
        "optim.epochs=14",
        "optim.batch_size=32",
        "optim.lr=0.004",
        *PLAIN_TRAINING,
    ]
    train(load_config(None, overrides), cache, tmp_path / "run")
    labels = Engine.load(tmp_path / "run").labels
    fp32 = Engine.load(export_onnx(tmp_path / "run", tmp_path / "fp32.onnx").path)
    int8 = Engine.load(export_onnx(tmp_path / "run", tmp_path / "int8.onnx", int8=True).path)
    fp32_top1 = fp32.predict_batch(val_seqs).argmax(axis=1)
    int8_top1 = int8.predict_batch(val_seqs).argmax(axis=1)
    truth = np.array([labels.index(e.label) for e in val_entries])
    assert (fp32_top1 == truth).mean() > 0.6  # trained, not random (2% by chance)
    agreement = (fp32_top1 == int8_top1).mean()
    assert agreement >= 0.99, f"int8 agrees with fp32 on {agreement:.1%} of {len(truth)} videos"
