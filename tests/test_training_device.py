"""Where training runs (--device), batches prepared in worker processes, and their seeding."""

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
import torch
from typer.testing import CliRunner

from islr.cli import build_app
from islr.datasets.synthetic import write_synthetic_cache
from islr.errors import ConfigError
from islr.training import load_config, load_training_data, train
from islr.training.batches import AugmentedBatches, BatchRecipe, BatchSource
from islr.training.data import iterate_batches, make_batch

TINY = [
    "features.seq_len=16",
    "model.kwargs={dim: 32, stages: 1, conv_blocks: 1, heads: 2, dropout: 0.1, head_dropout: 0.1}",
    "optim.batch_size=16",
    "optim.lr=0.005",
    "threads=1",
]
NO_CUDA = "needs a CUDA GPU (CI and this machine are CPU-only)"


@pytest.fixture(scope="module")
def synth_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_cache(root, n_classes=4, per_class=12, seed=0)
    return root


@pytest.fixture(scope="module")
def synth_data(synth_cache):
    return load_training_data(str(synth_cache))


def recipe_for(data, *overrides, seed=0):
    cfg = load_config(None, [*TINY, *overrides])
    seq_len = cfg.features.for_layout(data.layout, data.has_z).seq_len
    return BatchRecipe(cfg.optim.batch_size, seq_len, data.layout, len(data.labels), cfg.augment,
                       cfg.optim.outlier_frac, seed)  # fmt: skip


# ---- device selection ------------------------------------------------------------------------


def test_auto_is_the_cpu_without_a_gpu():
    from islr.models.device import resolve_device

    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("a GPU is present: auto picks it")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_asking_for_an_absent_gpu_is_a_clear_error(name):
    from islr.models.device import resolve_device

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(ConfigError, match=rf"device '{name}'.*--device cpu"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu", "cuda0"])
def test_unknown_device_names_are_rejected(name):
    from islr.models.device import resolve_device

    with pytest.raises(ConfigError, match="auto, cpu, cuda, cuda:N or mps"):
        resolve_device(name)


def test_cli_device_errors_in_one_line(synth_cache, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    runner = CliRunner()
    for args in (
        ["train", "--data", str(synth_cache), "--out", str(tmp_path / "r"), "--device", "cuda"],
        ["cv", "--data", str(synth_cache), "--out", str(tmp_path / "c"), "--device", "cuda:1"],
        ["train-segmenter", "--data", str(synth_cache), "--out", str(tmp_path / "s"),
         "--device", "cuda"],
    ):  # fmt: skip
        result = runner.invoke(build_app(), args)
        assert result.exit_code != 0, args
        assert "this PyTorch" in result.output and "Traceback" not in result.output, args
        assert not (tmp_path / "r" / "best.pt").exists()


def test_device_is_recorded(synth_cache, tmp_path):
    result = train(
        load_config(None, [*TINY, "optim.epochs=1", "device=cpu"]), synth_cache, tmp_path
    )
    assert result.device == "cpu"
    assert json.loads((tmp_path / "history.json").read_text())[0]["device"] == "cpu"
    assert load_config(tmp_path / "config.yaml").device == "cpu"


def test_bad_precision_is_a_config_error(synth_cache, tmp_path):
    with pytest.raises(ConfigError, match="precision"):
        train(load_config(None, [*TINY, "precision=fp8"]), synth_cache, tmp_path)


# ---- batches: seeding, workers, augmentation statistics ----------------------------------------


def _epoch(batches, workers, epoch):
    source = BatchSource(batches, workers)
    try:
        return list(source.epoch(epoch))
    finally:
        source.close()


def test_batches_are_the_same_for_any_worker_count(synth_data):
    recipe = recipe_for(synth_data, "optim.outlier_frac=0.25", "augment.p_mixup=0.5")
    batches = AugmentedBatches(synth_data.train, recipe)
    for epoch in (1, 2):
        alone, workers = _epoch(batches, 0, epoch), _epoch(batches, 2, epoch)
        assert len(alone) == len(workers) == batches.steps_per_epoch()
        for a, b in zip(alone, workers, strict=True):
            np.testing.assert_array_equal(a.x.numpy(), b.x.numpy())  # NaN where NaN
            np.testing.assert_array_equal(a.soft.numpy(), b.soft.numpy())
            np.testing.assert_array_equal(a.y.numpy(), b.y.numpy())


def test_batches_change_with_epoch_and_seed(synth_data):
    one = AugmentedBatches(synth_data.train, recipe_for(synth_data, seed=0))
    other = AugmentedBatches(synth_data.train, recipe_for(synth_data, seed=1))
    a, b, c = one[(1, 0)], one[(2, 0)], other[(1, 0)]
    assert not np.array_equal(a.y.numpy(), b.y.numpy()) or not np.allclose(
        np.nan_to_num(a.x.numpy()), np.nan_to_num(b.x.numpy())
    )
    assert not np.array_equal(a.y.numpy(), c.y.numpy())
    every = np.sort(np.concatenate([one[(3, i)].y.numpy() for i in range(len(one))]))
    np.testing.assert_array_equal(every, np.sort(synth_data.train.targets))  # each sample once


def _statistics(batches: list[np.ndarray]) -> dict[str, float]:
    x = np.concatenate(batches)
    valid = ~np.isnan(x)
    xy = np.where(valid, x, 0.0)
    n = valid.sum()
    motion = np.abs(np.diff(x, axis=1))
    with warnings.catch_warnings():  # frames with no point detected have no spread
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmean(np.nanstd(x[..., 0], axis=2))
    return {
        "missing": 1 - valid.mean(),
        "mean": xy.sum() / n,
        "sd": np.sqrt((np.where(valid, x - xy.sum() / n, 0.0) ** 2).sum() / n),
        "motion": np.nanmean(motion),
        "spread": spread,
    }


def test_augmentation_statistics_match_one_sequential_generator(synth_data):
    """Per-batch generators give augmented batches distributed like the former single generator
    (one rng through the whole run), in the training process and in workers alike."""
    recipe = recipe_for(synth_data)
    train_set = synth_data.train
    rng = np.random.default_rng(123)
    epochs = 12
    sequential = [
        make_batch([train_set.arrays[i] for i in idx], recipe.seq_len, recipe.layout,
                   recipe.augment, rng)
        for _ in range(epochs) for idx in iterate_batches(train_set, recipe.batch_size, rng)
    ]  # fmt: skip
    batches = AugmentedBatches(train_set, recipe)
    in_workers = [b.x.numpy() for e in range(1, epochs + 1) for b in _epoch(batches, 2, e)]
    plain = _statistics([np.stack([resample_all(a, recipe.seq_len) for a in train_set.arrays])])
    seq, par = _statistics(sequential), _statistics(in_workers)
    for key in seq:
        # the two samplings differ by sampling noise only; each is far from no augmentation
        assert par[key] == pytest.approx(seq[key], rel=0.06, abs=2e-3), key
    assert abs(seq["missing"] - plain["missing"]) > 0.02


def resample_all(a, seq_len):
    from islr.features import resample

    return resample(a, seq_len)


# ---- training runs -------------------------------------------------------------------------------


def test_same_run_with_and_without_batch_workers(synth_cache, tmp_path):
    """A run is reproducible for a seed and device whatever its worker count."""
    cfg = [*TINY, "optim.epochs=2", "augment.p_mixup=0.3"]
    alone = train(load_config(None, [*cfg, "workers=0"]), synth_cache, tmp_path / "a")
    workers = train(load_config(None, [*cfg, "workers=2"]), synth_cache, tmp_path / "b")
    assert [r.train_loss for r in alone.history] == [r.train_loss for r in workers.history]
    assert [r.val_acc for r in alone.history] == [r.val_acc for r in workers.history]


def test_checkpoints_only_when_due(synth_cache, tmp_path):
    cfg = load_config(None, [*TINY, "optim.epochs=3", "checkpoint_every=2"])
    seen = []

    def on_epoch(record):
        seen.append((record.epoch, (tmp_path / "last.pt").is_file()))

    train(cfg, synth_cache, tmp_path, on_epoch=on_epoch)
    assert seen == [(1, False), (2, True), (3, True)]
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_run_loads_on_the_cpu(synth_cache, tmp_path):
    from islr.inference import Engine
    from islr.landmarks import LandmarkCache

    cfg = load_config(None, [*TINY, "optim.epochs=3", "device=cuda", "precision=bf16"])
    result = train(cfg, synth_cache, tmp_path)
    assert result.device.startswith("cuda:0")
    engine = Engine.load(tmp_path)  # a checkpoint written from CUDA tensors, read on the CPU
    cache = LandmarkCache(synth_cache)
    entries = cache.entries(split="val")
    probs = engine.predict_batch(cache.load_many(entries))
    targets = np.array([engine.labels.index(e.label) for e in entries])
    assert (probs.argmax(1) == targets).mean() == pytest.approx(result.best_val_acc, abs=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_runs_are_reproducible(synth_cache, tmp_path):
    cfg = load_config(None, [*TINY, "optim.epochs=2", "device=cuda", "workers=2"])
    a = train(cfg, synth_cache, tmp_path / "a")
    b = train(cfg, synth_cache, tmp_path / "b")
    np.testing.assert_allclose([r.train_loss for r in a.history],
                               [r.train_loss for r in b.history], rtol=1e-4)  # fmt: skip


def test_engine_device(synth_cache, tmp_path):
    from islr.errors import ModelError
    from islr.inference import Engine

    train(load_config(None, [*TINY, "optim.epochs=1"]), synth_cache, tmp_path)
    from islr.landmarks import LandmarkCache

    cache = LandmarkCache(synth_cache)
    seqs = cache.load_many(cache.entries(split="val")[:4])
    np.testing.assert_allclose(Engine.load(tmp_path, device="auto").predict_batch(seqs),
                               Engine.load(tmp_path).predict_batch(seqs), atol=1e-3)  # fmt: skip
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cpu"):
            Engine.load(tmp_path, device="cuda")
    with pytest.raises(ModelError, match="ONNX Runtime on the CPU"):
        Engine.load("include50", device="cuda:0")


def test_one_batch_source_runs_through_epochs_in_order(synth_data):
    """Workers prepare across epoch boundaries (one pass over the run's keys); an epoch taken out
    of order (a resumed run) restarts them there."""
    batches = AugmentedBatches(synth_data.train, recipe_for(synth_data))
    source = BatchSource(batches, 2, last_epoch=6)
    try:
        for epoch in (1, 2, 3, 5, 6):
            got = list(source.epoch(epoch))
            assert len(got) == batches.steps_per_epoch()
            for b, batch in enumerate(got):
                np.testing.assert_array_equal(batch.x.numpy(), batches[(epoch, b)].x.numpy())
    finally:
        source.close()


# ---- CUDA graphs -----------------------------------------------------------------------------

NO_DROPOUT = (
    "model.kwargs={dim: 32, stages: 1, conv_blocks: 1, heads: 2, dropout: 0.0, head_dropout: 0.0}"
)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_graphed_forward_backward_gives_the_eager_gradients(synth_data):
    from functools import partial

    from islr.models import ModelSpec
    from islr.training.graphed_step import GraphedForwardBackward
    from islr.training.loop import _soft_cross_entropy

    cfg = load_config(None, [*TINY, NO_DROPOUT])
    features = cfg.features.for_layout(synth_data.layout, synth_data.has_z)
    spec = ModelSpec(cfg.model, features, synth_data.layout, synth_data.n_coords,
                     synth_data.labels)  # fmt: skip
    graphed_model = spec.build().cuda().train()
    eager_model = spec.build().cuda().train()
    eager_model.load_state_dict(graphed_model.state_dict())
    loss_fn = partial(_soft_cross_entropy, smoothing=0.1)
    graphed = GraphedForwardBackward(graphed_model, loss_fn)
    eager = GraphedForwardBackward(eager_model, loss_fn)
    batches = AugmentedBatches(synth_data.train, recipe_for(synth_data))
    # two full batches (the second one replays the graph) and the short last one (a second graph)
    for key in [(1, 0), (1, 1), (1, len(batches) - 1), (2, 0)]:
        batch = batches[key].to(torch.device("cuda"))
        loss_g, logits_g = graphed.forward_backward(batch.x, batch.soft)
        loss_e, logits_e = eager.eager(batch.x, batch.soft)
        torch.testing.assert_close(loss_g, loss_e, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(logits_g, logits_e, rtol=1e-4, atol=1e-4)
        for p, q in zip(graphed_model.parameters(), eager_model.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5)
        for a, b in zip(graphed_model.buffers(), eager_model.buffers(), strict=True):
            torch.testing.assert_close(a, b)  # BatchNorm statistics: warm-up left no trace
    assert graphed.failure is None and len(graphed.captured) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_graph_run_trains_like_an_eager_run(synth_cache, tmp_path):
    cfg = [*TINY, NO_DROPOUT, "optim.epochs=3", "device=cuda", "workers=2"]
    graphed = train(load_config(None, [*cfg, "cuda_graphs=true"]), synth_cache, tmp_path / "g")
    eager = train(load_config(None, [*cfg, "cuda_graphs=false"]), synth_cache, tmp_path / "e")
    np.testing.assert_allclose([r.train_loss for r in graphed.history],
                               [r.train_loss for r in eager.history], rtol=1e-3)  # fmt: skip
    assert graphed.best_val_acc == pytest.approx(eager.best_val_acc, abs=0.05)
