"""``islr enroll`` (from a cache and from files) and ``islr vocab`` (list, rename, remove, export,
import): the new model predicts, evaluates and serves the added signs; flagged signs are skipped
unless forced; bad use is one clear line."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
pytest.importorskip("onnx", reason="needs onnx, the [train] extra")
from typer.testing import CliRunner  # noqa: E402

from islr.cli import build_app  # noqa: E402
from islr.inference import Engine  # noqa: E402
from islr.landmarks import LandmarkCache, ManifestEntry, save_sequence  # noqa: E402
from tests.test_inference_support import (  # noqa: E402
    synthetic_labels,
    synthetic_onnx,
    synthetic_sign,
    unseen_synthetic_sign,
)


def islr(*args: str):
    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.onnx"
    shutil.copy(synthetic_onnx(), path)
    return path


@pytest.fixture
def cache(tmp_path):
    """'wave' (a sign the model never saw) in train and val; a known sign under another name."""
    root = tmp_path / "cache"
    with LandmarkCache(root).writer(batch=32) as writer:
        for i in range(6):
            entry = ManifestEntry(id=f"wave/{i}", label="wave", split="train")
            writer.add(unseen_synthetic_sign(i, signer=5 + i % 2), entry)
            entry = ManifestEntry(id=f"wave/v{i}", label="wave", split="val")
            writer.add(unseen_synthetic_sign(100 + i, signer=5 + i % 2), entry)
        for i in range(3):
            entry = ManifestEntry(id=f"copy/{i}", label="copy", split="train")
            writer.add(synthetic_sign(1, 600 + i), entry)
    return root


def test_enroll_from_a_cache_predicts_evaluates_and_keeps_the_original(model, cache, tmp_path):
    new = tmp_path / "new.onnx"
    r = islr("enroll", model, "--data", cache, "--labels", "wave", "--shots", 3, "--seed", 1,
             "--out", new)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "added" in r.output and (tmp_path / "new.vocab.json").is_file()
    stored = json.loads((tmp_path / "new.vocab.json").read_text())
    assert [s["label"] for s in stored["signs"]] == ["wave"] and stored["signs"][0]["examples"] == 3
    assert "seed 1" in stored["signs"][0]["provenance"][0]["source"]
    assert Engine.load(model).labels == synthetic_labels()  # MODEL itself is unchanged
    assert Engine.load(new).labels == [*synthetic_labels(), "wave"]
    npz = save_sequence(unseen_synthetic_sign(200), tmp_path / "q.npz")
    r = islr("predict", new, npz, "--json")
    assert json.loads(r.output)["top"][0]["label"] == "wave", r.output
    r = islr("evaluate", new, "--data", cache, "--split", "val", "--out", tmp_path / "report")
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["top1"] >= 0.8


def test_a_sign_too_close_to_a_known_one_is_skipped_unless_forced(model, cache, tmp_path):
    r = islr("enroll", model, "--data", cache, "--out", tmp_path / "a.onnx")
    assert r.exit_code == 1, r.output
    assert "skipped" in r.output and synthetic_labels()[1] in r.output
    assert Engine.load(tmp_path / "a.onnx").labels == [*synthetic_labels(), "wave"]
    r = islr("enroll", model, "--data", cache, "--out", tmp_path / "b.onnx", "--force")
    assert r.exit_code == 0, r.output
    assert Engine.load(tmp_path / "b.onnx").labels == [*synthetic_labels(), "copy", "wave"]


def test_enroll_from_files_adds_examples_in_place_and_vocab_commands(model, tmp_path):
    files = [save_sequence(unseen_synthetic_sign(i), tmp_path / f"t{i}.npz") for i in range(3)]
    r = islr("enroll", model, "--label", "wave", *files[:2], "--out", model)
    assert r.exit_code == 0, r.output
    r = islr("enroll", model, "--label", "wave", files[2], "--out", model)
    assert r.exit_code == 0, r.output
    sign = Engine.load(model).vocabulary.find("wave")
    assert sign.examples == 3 and len(sign.prototypes) == 3
    assert [p["source"] for p in sign.provenance] == ["t0.npz, t1.npz", "t2.npz"]

    r = islr("vocab", "list", model, "--json")
    listing = json.loads(r.output)
    assert [s["label"] for s in listing["signs"]] == ["wave"] and listing["signs"][0][
        "examples"
    ] == 3
    assert islr("vocab", "rename", model, "wave", "hello wave").exit_code == 0
    assert "hello wave" in islr("vocab", "list", model, "--known").output
    exported = tmp_path / "signs.json"
    assert islr("vocab", "export", model, "--out", exported).exit_code == 0
    assert islr("vocab", "remove", model, "hello wave").exit_code == 0
    assert Engine.load(model).labels == synthetic_labels()
    assert islr("vocab", "import", model, exported).exit_code == 0
    assert Engine.load(model).labels == [*synthetic_labels(), "hello wave"]

    for args, message in [
        (("vocab", "remove", model, "nope"), "no such sign"),
        (("vocab", "remove", model, synthetic_labels()[0]), "trained on"),
        (("vocab", "rename", model, "hello wave", synthetic_labels()[0]), "already a sign"),
        (("enroll", model, "--out", tmp_path / "x.onnx"), "either --data"),
        (("enroll", model, "--label", "x", "--out", tmp_path / "x.onnx"), "recordings"),
        (("enroll", model, "--label", "x", tmp_path / "none.npz", "--out", tmp_path / "x.onnx"),
         "no such file"),
        (("enroll", model, "--label", "x", files[0], "--out", tmp_path / "x.txt"), ".onnx or .pt"),
    ]:  # fmt: skip
        r = islr(*args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)


def test_export_with_the_training_data_stores_the_known_prototypes(tmp_path):
    from tests.test_inference_support import synthetic_run

    run = synthetic_run()
    r = islr("export", run, "--out", tmp_path / "m.onnx", "--data", run.parent / "cache")
    assert r.exit_code == 0 and "stored" in r.output, r.output
    engine = Engine.load(tmp_path / "m.onnx")
    assert engine.reference.known_prototypes.shape == (3, engine.embedding_dim)
    assert 0 < engine.reference.duplicate_similarity < 1
    r = islr("export", run, "--out", tmp_path / "plain.onnx")
    assert r.exit_code == 0 and "none" in r.output
    assert Engine.load(tmp_path / "plain.onnx").reference.known_prototypes is None
