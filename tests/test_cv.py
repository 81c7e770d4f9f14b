"""Cross-validation: stratified, deterministic folds; fold jobs that never score on seen data;
a resumable runner; one stratified split for `islr labels` and `islr train --val-from-train`."""

import json
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
from typer.testing import CliRunner

from islr.cli import build_app
from islr.datasets.labels import stratified_folds, stratified_split
from islr.datasets.synthetic import write_synthetic_cache
from islr.errors import DatasetError
from islr.landmarks import LandmarkCache, ManifestEntry
from islr.training import load_training_data
from islr.training.cv import cross_validate, fold_jobs, read_fold_result
from tests.conftest import need_ray

TINY = {
    "features": {"seq_len": 16},
    "model": {"name": "conv_transformer",
              "kwargs": {"dim": 32, "stages": 1, "conv_blocks": 1, "heads": 2}},
    "optim": {"epochs": 2, "batch_size": 16, "lr": 0.005},
}  # fmt: skip


@pytest.fixture(scope="module")
def synth_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_cache(root, n_classes=4, per_class=10, seed=0)
    return root


def _entries(sizes: dict[str, int]) -> list[ManifestEntry]:
    return [ManifestEntry(id=f"{c}{i}", label=c) for c, n in sizes.items() for i in range(n)]


def test_folds_are_stratified_balanced_and_deterministic():
    entries = _entries({"a": 10, "b": 7, "c": 5, "d": 13})
    folds = stratified_folds(entries, 5, seed=0)
    assert set(folds) == {e.id for e in entries} and set(folds.values()) == set(range(5))
    per_class = Counter((e.label, folds[e.id]) for e in entries)
    for label, n in {"a": 10, "b": 7, "c": 5, "d": 13}.items():
        counts = [per_class[(label, f)] for f in range(5)]
        assert max(counts) - min(counts) <= 1 and sum(counts) == n
    sizes = Counter(folds.values()).values()
    assert max(sizes) - min(sizes) <= 1
    assert stratified_folds(entries, 5, seed=0) == folds
    assert stratified_folds(entries, 5, seed=1) != folds

    # a class's folds do not depend on which other classes are present
    def groups(fold_of, label):
        return {frozenset(i for i in fold_of if i[0] == label and fold_of[i] == f)
                for f in range(3)}  # fmt: skip

    alone = stratified_folds(_entries({"a": 10}), 3, seed=0)
    assert groups(alone, "a") == groups(stratified_folds(entries, 3, seed=0), "a")
    with pytest.raises(DatasetError, match="at least 2 folds"):
        stratified_folds(entries, 1, seed=0)


def test_train_val_from_train_uses_the_labels_split(synth_cache):
    cache = LandmarkCache(synth_cache)
    train = [e for e in cache.entries() if e.split == "train"]
    expected = stratified_split(train, 0.25, 7)
    data = load_training_data(str(synth_cache), val_from_train=0.25, seed=7)
    assert sorted(data.val.ids) == sorted(i for i, s in expected.items() if s == "val")
    assert sorted(data.train.ids) == sorted(i for i, s in expected.items() if s == "train")


def test_fold_jobs_hold_out_each_sample_once(synth_cache, tmp_path):
    jobs, n = fold_jobs(TINY, synth_cache, tmp_path, folds=4, seeds=(0, 1), splits=())
    assert n == 40 and len(jobs) == 8
    for seed in (0, 1):
        held_out = [i for j in jobs if j.seed == seed for i, s in j.split_of.items() if s == "val"]
        assert sorted(held_out) == sorted(e.id for e in LandmarkCache(synth_cache).entries())
    # both seeds see the same folds (so their models can be averaged per fold)
    assert [j.split_of for j in jobs if j.seed == 0] == [j.split_of for j in jobs if j.seed == 1]
    with pytest.raises(DatasetError, match="fewer samples than the 20 folds"):
        fold_jobs(TINY, synth_cache, tmp_path, folds=20, splits=())


@pytest.mark.slow
def test_fold_jobs_by_signer_hold_out_whole_signers(synth_cache, tmp_path):
    jobs, n = fold_jobs(TINY, synth_cache, tmp_path, folds=3, seeds=(0,), group_by="signer")
    signer = {e.id: e.extra["signer"] for e in LandmarkCache(synth_cache).entries()}
    held = [{signer[i] for i, s in j.split_of.items() if s == "val"} for j in jobs]
    trained = [{signer[i] for i, s in j.split_of.items() if s == "train"} for j in jobs]
    assert all(h and not (h & t) for h, t in zip(held, trained, strict=True))
    assert set.union(*held) == set(signer.values())


def test_cross_validate_scores_resumes_and_reports(synth_cache, tmp_path):
    seen = []
    report = cross_validate(TINY, synth_cache, tmp_path, folds=2, seeds=(0, 1), splits=(),
                            perturbations=("mirror",), workers=1, on_result=seen.append)  # fmt: skip
    assert len(report.results) == 4 and len(seen) == 4
    s = report.summary()
    assert 0.0 <= s["top1"]["mean"] <= 1.0 and s["top1"]["n"] == 4
    assert "top1_mirror" in s and len(report.ensemble_top1) == 2
    saved = json.loads((tmp_path / "cv.json").read_text())
    assert saved["summary"]["top1"] == s["top1"]
    assert len((tmp_path / "cv.csv").read_text().splitlines()) == 5
    run = tmp_path / "seed0-fold1"
    r = read_fold_result(run)
    with np.load(run / "val_probs.npz") as z:  # the saved scores are the reported ones
        assert float((z["clean"].argmax(1) == z["y_true"]).mean()) == pytest.approx(r.top1)
        val_ids = z["ids"].tolist()
    assert len(val_ids) == r.n_val == 20
    # the fold's model never saw its val samples
    train_ids = json.loads((run / "file_to_label.json").read_text())
    assert not set(train_ids) & set(val_ids)
    # a rerun trains nothing: every result is read back
    again = cross_validate(TINY, synth_cache, tmp_path, folds=2, seeds=(0, 1), splits=(),
                           perturbations=("mirror",), workers=1,
                           run_jobs=lambda jobs: pytest.fail(f"retrained {len(jobs)}"))  # fmt: skip
    assert again.summary()["top1"] == s["top1"]


def test_cli_cv_errors_are_one_line(synth_cache, tmp_path):
    runner = CliRunner()
    result = runner.invoke(build_app(), ["cv", "--data", str(synth_cache), "--out",
                                         str(tmp_path), "--seeds", "a,b"])  # fmt: skip
    assert result.exit_code == 2 and "--seeds must be integers" in result.output
    result = runner.invoke(build_app(), ["cv", "--data", str(synth_cache), "--out",
                                         str(tmp_path), "--folds", "30", "--splits", ""])  # fmt: skip
    assert result.exit_code == 2 and "fewer samples than the 30 folds" in result.output


@pytest.mark.slow
def test_cross_validate_on_ray_matches_local_processes(synth_cache, tmp_path):
    need_ray()
    from islr.training.cv import ray_job_runner

    args = dict(folds=2, seeds=(0,), splits=(), perturbations=("mirror",))
    local = cross_validate(TINY, synth_cache, tmp_path / "local", workers=1, **args)
    on_ray = cross_validate(TINY, synth_cache, tmp_path / "ray", **args,
                            run_jobs=ray_job_runner("local", num_cpus=2))  # fmt: skip
    assert [(r.seed, r.fold) for r in on_ray.results] == [(0, 0), (0, 1)]
    # training is deterministic for a seed and thread count: the same scores wherever it ran
    for a, b in zip(local.results, on_ray.results, strict=True):
        assert (a.top1, a.macro_f1, a.perturbed) == (b.top1, b.macro_f1, b.perturbed)
    assert (tmp_path / "ray" / "seed0-fold1" / "result.json").is_file()
