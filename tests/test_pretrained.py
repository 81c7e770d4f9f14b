"""The shipped include50 model: found by name everywhere a model is accepted, self-describing,
its checkpoint and ONNX file agree, and it recognises real INCLUDE-50 keypoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from islr.cli import build_app
from islr.errors import ModelError
from islr.inference import Engine
from islr.pretrained import (
    PRETRAINED_DIR,
    is_pretrained_name,
    pretrained_names,
    pretrained_path,
    resolve_model,
)
from tests.conftest import REPO_ROOT, need_torch, shared_data

INCLUDE50_LABELS = REPO_ROOT.parent / "shared/data/include50/splits/label_map_include50.json"


def test_shipped_files_and_names():
    assert pretrained_names() == ["include50"]
    onnx_path = pretrained_path("include50")
    assert onnx_path.parent == PRETRAINED_DIR and onnx_path.suffix == ".onnx"
    assert onnx_path.stat().st_size <= 3_000_000  # the size the issue allows
    assert pretrained_path("include50", "pt").is_file()
    card = pretrained_path("include50", "md").read_text()
    for needed in ("INCLUDE", "Sridhar", "make pretrained", "cross-validation", "license"):
        assert needed.lower() in card.lower(), needed
    with pytest.raises(ModelError, match="no such shipped model"):
        pretrained_path("include263")


def test_a_path_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_pretrained_name("include50") and resolve_model("include50") == pretrained_path(
        "include50"
    )
    Path("include50").mkdir()  # a run folder of that name in the working directory
    assert not is_pretrained_name("include50") and resolve_model("include50") == Path("include50")
    assert resolve_model("runs/x") == Path("runs/x")


def test_engine_loads_it_by_name_with_its_metadata():
    engine = Engine.load("include50", threads=1)
    assert engine.backend == "onnx" and len(engine.labels) == 50
    meta = engine.metadata
    assert meta["layout"]["name"] == "hands_pose75" and meta["features"]["coords"] == "xy"
    assert meta["quantization"] == "dynamic-int8"
    assert engine.labels == sorted(engine.labels)
    # the sign embedding, and the known signs' mean training embeddings for adding signs
    assert meta["embedding"]["dim"] == engine.embedding_dim == 512
    assert engine.reference.known_prototypes.shape == (50, 512)
    if INCLUDE50_LABELS.is_file():  # the vocabulary is INCLUDE-50's
        from islr.datasets.include import label_key

        official = json.loads(INCLUDE50_LABELS.read_text())
        assert sorted(label_key(x) for x in official) == sorted(label_key(x) for x in engine.labels)


def test_checkpoint_and_onnx_agree_on_real_signs():
    need_torch()  # the checkpoint runs in PyTorch
    val = shared_data("include50", "val")
    from islr.datasets.importers import read_include_json

    files = sorted(val.glob("*.json"))[:24]
    seqs = [read_include_json(f)[0] for f in files]
    onnx_engine = Engine.load("include50", threads=1)
    pt_engine = Engine.load(pretrained_path("include50", "pt"), threads=1)
    assert pt_engine.labels == onnx_engine.labels
    assert pt_engine.metadata["members"] == onnx_engine.metadata["members"]
    p_onnx, p_pt = onnx_engine.predict_batch(seqs), pt_engine.predict_batch(seqs)
    assert (p_onnx.argmax(1) == p_pt.argmax(1)).all()
    assert np.abs(p_onnx - p_pt).max() < 0.05  # int8 weights vs fp32
    from islr.datasets.include import label_key

    truth = [label_key(json.loads(f.read_text())["label"]) for f in files]
    predicted = [label_key(onnx_engine.labels[i]) for i in p_onnx.argmax(1)]
    # val is part of the shipped model's training data: this checks wiring, not accuracy
    assert np.mean([t == p for t, p in zip(truth, predicted, strict=True)]) >= 0.9


def test_cli_predict_and_evaluate_by_name(tmp_path, monkeypatch):
    sample = sorted(shared_data("include50", "val").glob("*.json"))[0]
    runner = CliRunner()
    result = runner.invoke(build_app(), ["predict", "include50", str(sample), "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert len(record["top"]) == 3
    # evaluate by name writes its report into the working directory, never into the package
    import shutil

    from islr.datasets.importers import import_include_json

    clips = tmp_path / "clips"
    clips.mkdir()
    for f in sorted(sample.parent.glob("*.json"))[:6]:
        shutil.copy(f, clips / f.name)
    import_include_json(clips, tmp_path / "cache", split="val")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in PRETRAINED_DIR.iterdir())
    result = runner.invoke(build_app(), ["evaluate", "include50", "--data", "cache"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eval-include50-val" / "metrics.json").is_file()
    assert sorted(p.name for p in PRETRAINED_DIR.iterdir()) == before


def test_export_by_name_reproduces_the_onnx_file(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "include50.onnx"
    result = CliRunner().invoke(build_app(), ["export", "include50", "--out", str(out), "--int8"])
    assert result.exit_code == 0, result.output
    shipped, again = Engine.load("include50"), Engine.load(out)
    assert again.labels == shipped.labels and again.metadata["members"] > 0
    x = np.random.default_rng(0).random(
        (3, again.seq_len, again.n_points, again.n_coords), dtype=np.float32
    )
    np.testing.assert_allclose(again.predict_prepared(x), shipped.predict_prepared(x), atol=1e-5)
