import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
from typer.testing import CliRunner

from islr.cli import build_app
from islr.datasets.synthetic import write_synthetic_cache
from islr.errors import CacheError, ConfigError, DatasetError, ModelError
from islr.landmarks import LandmarkCache, LandmarkSequence, ManifestEntry
from islr.training import load_config, train

TINY = [
    "features.seq_len=16",
    "model.kwargs={dim: 32, stages: 1, conv_blocks: 1, heads: 2, dropout: 0.0, head_dropout: 0.0}",
    "optim.batch_size=16",
    "optim.lr=0.005",
    "threads=1",
]


@pytest.fixture(scope="module")
def synth_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_cache(root, n_classes=4, per_class=12, seed=0)
    return root


def tiny_config(*extra):
    return load_config(None, [*TINY, *extra])


def test_training_reduces_loss_and_learns(synth_cache, tmp_path):
    result = train(tiny_config("optim.epochs=12"), synth_cache, tmp_path)
    h = result.history
    assert h[-1].train_loss < 0.7 * h[0].train_loss
    assert result.best_val_acc >= 0.6  # 4 classes: chance is 0.25
    for name in ("best.pt", "last.pt", "history.json", "results.png", "labels.json",
                 "file_to_label.json", "config.yaml"):  # fmt: skip
        assert (tmp_path / name).is_file(), name
    assert len(json.loads((tmp_path / "history.json").read_text())) == 12
    assert load_config(tmp_path / "config.yaml").optim.epochs == 12


def test_checkpoint_predicts_like_the_trained_model(synth_cache, tmp_path):
    """best.pt scores on val exactly what the model in memory scored when train() saved it."""
    from islr.inference import Engine

    cfg = tiny_config("optim.epochs=3", "optim.label_smoothing=0", "ema=0.9")
    result = train(cfg, synth_cache, tmp_path)
    in_memory = result.history[result.best_epoch - 1]  # the evaluated (EMA) model's val scores
    cache = LandmarkCache(synth_cache)
    entries = cache.entries(split="val")
    engine = Engine.load(tmp_path)
    probs = engine.predict_batch(cache.load_many(entries))
    targets = np.array([engine.labels.index(e.label) for e in entries])
    assert (probs.argmax(1) == targets).mean() == pytest.approx(in_memory.val_acc, abs=1e-9)
    loss = -np.log(probs[np.arange(len(targets)), targets]).mean()
    assert loss == pytest.approx(in_memory.val_loss, rel=1e-4)


def test_resume_continues_exactly(synth_cache, tmp_path):
    straight = train(tiny_config("optim.epochs=4", "ema=0.9"), synth_cache, tmp_path / "a")
    train(tiny_config("optim.epochs=2", "ema=0.9"), synth_cache, tmp_path / "b")
    # same schedule length as the straight run, stopped after 2 epochs, then resumed
    first = tiny_config("optim.epochs=4", "ema=0.9", "checkpoint_every=1")
    import shutil

    shutil.rmtree(tmp_path / "b")
    from islr.training import loop

    class Stop(Exception):
        pass

    def stop_after_two(record):
        if record.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        loop.train(first, synth_cache, tmp_path / "b", on_epoch=stop_after_two)
    resumed = train(first, synth_cache, tmp_path / "b", resume=True)
    a = [(r.train_loss, r.val_loss) for r in straight.history]
    b = [(r.train_loss, r.val_loss) for r in resumed.history]
    np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-5)


def test_same_seed_same_history(synth_cache, tmp_path):
    a = train(tiny_config("optim.epochs=2"), synth_cache, tmp_path / "a")
    b = train(tiny_config("optim.epochs=2"), synth_cache, tmp_path / "b")
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]


def test_config_overrides_and_errors(tmp_path):
    cfg = load_config("seed", ["optim.lr=0.01", "augment.p_mirror=0.5"])
    assert cfg.model.name == "seed_transformer" and cfg.optim.lr == 0.01
    assert cfg.augment.p_mirror == 0.5 and cfg.augment.speed_range == (0.8, 1.2)
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["nonsense"])
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="coords"):
        load_config(None, ["features.coords=abc"])


def test_bad_data_gives_clear_errors(tmp_path, synth_cache):
    with pytest.raises(CacheError, match="no such cache folder"):
        train(tiny_config(), tmp_path / "missing", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CacheError, match="no samples"):
        train(tiny_config(), tmp_path / "empty", tmp_path / "run")
    one = LandmarkCache(tmp_path / "one")
    rng = np.random.default_rng(0)
    with one.writer() as w:
        for i in range(3):
            seq = LandmarkSequence(rng.random((10, 136, 3)), "holistic136")
            w.add(seq, ManifestEntry(id=f"s{i}", label="hello", split="train"))
    with pytest.raises(DatasetError, match="at least 2 classes"):
        train(tiny_config(), one.root, tmp_path / "run")
    # resuming a run with data of another layout / labels
    train(tiny_config("optim.epochs=1"), synth_cache, tmp_path / "r")
    other = LandmarkCache(tmp_path / "other")
    with other.writer() as w:
        for i in range(4):
            seq = LandmarkSequence(rng.random((10, 75, 3)), "hands_pose75")
            w.add(seq, ManifestEntry(id=f"s{i}", label=f"c{i % 2}", split="train"))
    with pytest.raises(ModelError, match="other labels or another layout"):
        train(tiny_config("optim.epochs=2"), other.root, tmp_path / "r", resume=True)


def test_cli_train_evaluate(synth_cache, tmp_path):
    runner = CliRunner()
    app = build_app()
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(synth_cache), "--out", str(run), "--epochs",
                            "2", *sum((["--set", s] for s in TINY), [])])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(run), "--data", str(synth_cache), "--split", "val"])
    assert r.exit_code == 0, r.output
    metrics = json.loads((run / "eval-val" / "metrics.json").read_text())
    assert {"top1", "top5", "macro_f1", "n"} <= set(metrics) and metrics["n"] > 0
    assert (run / "eval-val" / "confusion.png").is_file()
    assert (run / "eval-val" / "per_class.csv").read_text().startswith("label,precision")
    r = runner.invoke(
        app, ["evaluate", str(run), "--data", str(synth_cache), "--perturb", "mirror"]
    )
    assert r.exit_code == 0 and (run / "eval-val-mirror" / "metrics.json").is_file()
    r = runner.invoke(
        app, ["evaluate", str(run), "--data", str(synth_cache), "--perturb", "webcam"]
    )
    assert r.exit_code == 0, r.output
    assert "close-framing" in r.output and "webcam suite (mean)" in r.output
    r = runner.invoke(app, ["train", "--data", str(synth_cache), "--out", str(run), "--set", "x=1"])
    assert r.exit_code == 2 and "unknown keys" in r.output


def test_evaluate_reports_unknown_signs(synth_cache, tmp_path):
    from islr.evaluation import evaluate_cache
    from islr.inference import Engine

    train(tiny_config("optim.epochs=1"), synth_cache, tmp_path / "run")
    extra = LandmarkCache(tmp_path / "mixed")
    src = LandmarkCache(synth_cache)
    with extra.writer() as w:
        for e in src.entries(split="val")[:6]:
            w.add(src.load(e), ManifestEntry(id=e.id, label=e.label, split="val"))
        w.add(src.load(e), ManifestEntry(id="new", label="never-seen", split="val"))
    result = evaluate_cache(Engine.load(tmp_path / "run"), extra.root, "val")
    assert result.n == 6 and result.unknown == {"never-seen": 1}


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    r = CliRunner().invoke(build_app(), ["demo", "--out", str(tmp_path), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "best.pt").is_file()
    assert (tmp_path / "run" / "eval-val" / "metrics.json").is_file()
    assert "SYNTHETIC" in r.output or "synthetic" in r.output
