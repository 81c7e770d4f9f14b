"""Repeated stratified k-fold cross-validation of a training recipe over a cache.

The recipe of a shipped model is chosen here, not on a small official val set: every labelled
sample of the chosen splits is in exactly one fold; for each training seed, each fold is scored by
a model trained on the other folds (its last epoch: nothing of the scored fold picks a checkpoint
or steers a schedule). The fold assignment depends only on ``fold_seed``, so the models of every
training seed see the same folds: besides single-model scores, the fold's models averaged over
seeds give an ensemble score at no extra cost.

Runs are independent jobs (``run_fold``) executed in local processes (on the CPU one core each,
on a GPU a few sharing it: :func:`parallel_runs`); every job writes
``RUN/seed<S>-fold<F>/result.json`` and its val probabilities, and a rerun skips finished jobs,
so an interrupted search resumes.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from islr.errors import DatasetError
from islr.landmarks import LandmarkCache, ManifestEntry, atomic_write_bytes

ROBUSTNESS = ("mirror", "rotate", "zoom", "speed", "drop-hands")


@dataclass
class FoldResult:
    seed: int
    fold: int
    top1: float
    top5: float
    macro_f1: float
    n_val: int
    seconds: float
    perturbed: dict[str, float] = field(default_factory=dict)  # perturbation -> top-1

    @property
    def robust_top1(self) -> float | None:
        """Mean top-1 over the ROBUSTNESS copies (None when none was scored)."""
        values = [v for k, v in self.perturbed.items() if k in ROBUSTNESS]
        return float(np.mean(values)) if values else None


@dataclass
class FoldJob:
    """Everything one fold's training needs; picklable, so it runs in any process or node."""

    config: dict[str, Any]
    cache_dir: str
    run_dir: str
    split_of: dict[str, str]  # sample id -> "train" / "val" for this fold
    seed: int
    fold: int
    perturbations: tuple[str, ...] = ROBUSTNESS
    threads: int = 1


def run_fold(job: FoldJob) -> FoldResult:
    """Train on the fold's train part, score its val part (clean and perturbed)."""
    from islr.evaluation import compute_metrics, perturb_sequence
    from islr.inference import Engine
    from islr.training.config import config_from_dict
    from islr.training.data import load_training_data
    from islr.training.loop import train

    run_dir = Path(job.run_dir)
    cfg = config_from_dict(job.config)
    cfg = replace(cfg, seed=job.seed, threads=job.threads)
    # train without val: the scored fold must not pick the checkpoint or drive the schedule
    train_only = {i: "train" for i, s in job.split_of.items() if s == "train"}
    data = load_training_data(job.cache_dir, label_file=cfg.data.label_file, split_of=train_only)
    result = train(cfg, job.cache_dir, run_dir, data=data)

    val_ids = sorted(i for i, s in job.split_of.items() if s == "val")
    by_id = {e.id: e for e in _labelled_entries(job.cache_dir, cfg.data.label_file)}
    labels = data.labels
    index = {name: i for i, name in enumerate(labels)}
    seqs = LandmarkCache(job.cache_dir).load_many([by_id[i] for i in val_ids])
    y_true = np.array([index[by_id[i].label] for i in val_ids])
    engine = Engine.load(run_dir / "best.pt", threads=job.threads)
    probs = engine.predict_batch(seqs)
    metrics = compute_metrics(probs, y_true, labels)
    arrays = {"ids": np.array(val_ids), "y_true": y_true, "clean": probs}
    perturbed = {}
    for name in job.perturbations:
        rng = np.random.default_rng([job.fold, _perturbation_seed(name)])
        p = engine.predict_batch([perturb_sequence(s, name, rng) for s in seqs])
        perturbed[name] = float((p.argmax(1) == y_true).mean())
        arrays[name] = p
    fold_result = FoldResult(
        seed=job.seed, fold=job.fold, top1=metrics.top1, top5=metrics.top5,
        macro_f1=metrics.macro_f1, n_val=metrics.n, seconds=result.seconds, perturbed=perturbed,
    )  # fmt: skip
    _save_npz(run_dir / "val_probs.npz", arrays)
    atomic_write_bytes(run_dir / "result.json", json.dumps(asdict(fold_result), indent=1).encode())
    (run_dir / "last.pt").unlink(missing_ok=True)  # its optimiser state only serves --resume
    return fold_result


def _perturbation_seed(name: str) -> int:
    """A fixed seed per perturbation (the robustness ones keep the seeds they always had)."""
    import zlib

    return 1000 + ROBUSTNESS.index(name) if name in ROBUSTNESS else zlib.crc32(name.encode())


def _labelled_entries(cache_dir: str | Path, label_file: str | None) -> list[ManifestEntry]:
    """The cache's entries, relabelled by ``label_file`` when the recipe names one."""
    from islr.training.data import read_label_file, relabel

    entries = LandmarkCache(cache_dir).require_entries()
    if label_file:
        entries = relabel(entries, read_label_file(label_file), cache_dir)
    return entries


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


@dataclass
class CVReport:
    """The fold results of a cross-validation and their summary."""

    folds: int
    seeds: list[int]
    fold_seed: int
    n_samples: int
    results: list[FoldResult]
    ensemble_top1: list[float] = field(default_factory=list)  # per fold, models of all seeds

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float]:
            a = np.asarray(values, dtype=float)
            sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
            return {"mean": float(a.mean()), "sd": sd, "n": len(a)}

        out = {
            "folds": self.folds,
            "seeds": self.seeds,
            "fold_seed": self.fold_seed,
            "n_samples": self.n_samples,
            "top1": stats([r.top1 for r in self.results]),
            "top5": stats([r.top5 for r in self.results]),
            "macro_f1": stats([r.macro_f1 for r in self.results]),
            "seconds_per_run": stats([r.seconds for r in self.results]),
            "worst_fold_top1": min(
                float(np.mean([r.top1 for r in self.results if r.fold == f]))
                for f in {r.fold for r in self.results}
            ),
        }
        if all(r.perturbed for r in self.results):
            if all(r.robust_top1 is not None for r in self.results):
                out["robust_top1"] = stats([r.robust_top1 for r in self.results])
            for name in self.results[0].perturbed:
                out[f"top1_{name}"] = stats([r.perturbed[name] for r in self.results])
            from islr.evaluation.metrics import WEBCAM

            if any(name in WEBCAM for name in self.results[0].perturbed):
                out["webcam_top1"] = stats([
                    float(np.mean([v for k, v in r.perturbed.items() if k in WEBCAM]))
                    for r in self.results
                ])  # fmt: skip
        if self.ensemble_top1:  # per fold: the fold's models of every seed, averaged
            out["ensemble_top1"] = stats(self.ensemble_top1)
        return out


def fold_jobs(
    config: dict[str, Any],
    cache_dir: str | Path,
    out_dir: str | Path,
    folds: int = 5,
    seeds: tuple[int, ...] = (0, 1),
    fold_seed: int = 0,
    splits: tuple[str, ...] = ("train", "val"),
    perturbations: tuple[str, ...] = ROBUSTNESS,
    threads: int = 1,
    group_by: str | None = None,
) -> tuple[list[FoldJob], int]:
    """The jobs of a cross-validation (``len(seeds) * folds``) and the number of samples; with
    ``group_by`` (a manifest field, e.g. ``signer``) no value of it is in two folds."""
    from islr.training.config import config_from_dict

    entries = _labelled_entries(cache_dir, config_from_dict(config).data.label_file)
    pool = [e for e in entries if e.label and (not splits or e.split in splits)]
    if not pool:
        raise DatasetError(f"{cache_dir}: no labelled samples in splits {list(splits)}")
    counts = Counter(e.label for e in pool)
    small = sorted(label for label, n in counts.items() if n < folds)
    if group_by:
        from islr.datasets.labels import group_folds

        fold_of = group_folds(pool, folds, group_by, fold_seed)
    elif small:
        raise DatasetError(
            f"{len(small)} sign(s) have fewer samples than the {folds} folds (e.g. {small[:5]}); "
            f"use fewer folds or drop them with `islr labels CACHE --min-samples {folds}`"
        )
    else:
        from islr.datasets.labels import stratified_folds

        fold_of = stratified_folds(pool, folds, fold_seed)
    jobs = [
        FoldJob(
            config=config,
            cache_dir=str(cache_dir),
            run_dir=str(Path(out_dir) / f"seed{seed}-fold{fold}"),
            split_of={i: "val" if f == fold else "train" for i, f in fold_of.items()},
            seed=seed,
            fold=fold,
            perturbations=tuple(perturbations),
            threads=threads,
        )
        for seed in seeds
        for fold in range(folds)
    ]
    return jobs, len(pool)


def read_fold_result(run_dir: str | Path) -> FoldResult | None:
    """The result a finished job left, or None (not run, or interrupted before the end)."""
    path = Path(run_dir) / "result.json"
    if not path.is_file():
        return None
    try:
        return FoldResult(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError):
        return None


def cross_validate(
    config: dict[str, Any],
    cache_dir: str | Path,
    out_dir: str | Path,
    folds: int = 5,
    seeds: tuple[int, ...] = (0, 1),
    fold_seed: int = 0,
    splits: tuple[str, ...] = ("train", "val"),
    perturbations: tuple[str, ...] = ROBUSTNESS,
    workers: int = 0,
    threads: int = 1,
    on_result: Callable[[FoldResult], None] | None = None,
    run_jobs: Callable[[list[FoldJob]], list[FoldResult]] | None = None,
    group_by: str | None = None,
) -> CVReport:
    """Cross-validate the recipe ``config`` (a TrainConfig as dict) on ``cache_dir``.

    ``workers`` local processes (0 = one per core / ``threads``) run the jobs not finished yet;
    ``run_jobs`` replaces them (e.g. a Ray cluster). ``group_by``: group k-fold over that
    manifest field (e.g. ``signer``: leave-signers-out). Writes ``cv.json`` and ``cv.csv`` into
    ``out_dir`` and returns the report.
    """
    import os

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, n_samples = fold_jobs(
        config, cache_dir, out_dir, folds, seeds, fold_seed, splits, perturbations, threads,
        group_by,
    )  # fmt: skip
    done: dict[tuple[int, int], FoldResult] = {}

    def record(r: FoldResult) -> None:
        done[(r.seed, r.fold)] = r
        if on_result:
            on_result(r)

    for j in jobs:
        if (r := read_fold_result(j.run_dir)) is not None:
            record(r)
    todo = [j for j in jobs if (j.seed, j.fold) not in done]
    if todo and run_jobs is not None:
        for r in run_jobs(todo):
            record(r)
    elif todo:
        workers, threads = parallel_runs(config, os.cpu_count() or 1, workers, threads)
        todo = [replace(j, threads=threads) for j in todo]
        if workers == 1:
            for j in todo:
                record(run_fold(j))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                for future in as_completed([pool.submit(run_fold, j) for j in todo]):
                    record(future.result())
    results = [done[(j.seed, j.fold)] for j in jobs]
    report = CVReport(folds, list(seeds), fold_seed, n_samples, results)
    if len(seeds) > 1:
        report.ensemble_top1 = [_ensemble_top1(out_dir, seeds, f) for f in range(folds)]
    write_cv_report(report, config, out_dir)
    return report


def parallel_runs(
    config: dict[str, Any], cores: int, workers: int = 0, threads: int = 1
) -> tuple[int, int]:
    """``(runs at a time, CPU cores each)`` for local jobs. On the CPU, one run per core by
    default (a small model gains little from more threads). On a GPU, a few runs share it: one
    run's small kernels leave the GPU idle while its process prepares the next step, and each run
    gets the cores for its batch workers."""
    from islr.models.device import resolve_device

    if resolve_device(config.get("device", "auto")).type == "cpu":
        threads = max(threads, 1)
        return (workers or max(1, cores // threads)), threads
    workers = workers or max(1, min(4, cores // 4))
    return workers, max(1, cores // workers)


def ray_job_runner(
    address: str, num_cpus: int | None = None
) -> Callable[[list[FoldJob]], list[FoldResult]]:
    """``run_jobs`` for :func:`cross_validate` that runs each fold as a Ray task (plain tasks:
    the folds are fixed and independent, nothing to schedule or stop early, see
    :mod:`islr.training.cv_ray`). The cache and the output folder must be on storage that every
    node sees."""
    from islr.training.cv_ray import run_folds_on_ray

    def run_jobs(jobs: list[FoldJob]) -> list[FoldResult]:
        threads = max(j.threads for j in jobs) if jobs else 1
        return run_folds_on_ray(
            [(run_fold, {"job": j}) for j in jobs], address, cpus_per_job=threads,
            num_cpus=num_cpus,
        )  # fmt: skip

    return run_jobs


def _ensemble_top1(out_dir: Path, seeds: tuple[int, ...], fold: int) -> float:
    """Top-1 of the fold's models of every seed, their probabilities averaged."""
    probs, y_true = [], None
    for seed in seeds:
        with np.load(out_dir / f"seed{seed}-fold{fold}" / "val_probs.npz") as z:
            probs.append(z["clean"])
            y_true = z["y_true"]
    return float((np.mean(probs, axis=0).argmax(1) == y_true).mean())


def write_cv_report(report: CVReport, config: dict[str, Any], out_dir: Path) -> None:
    """``cv.json`` (summary, every fold's result, the recipe) and ``cv.csv`` (one row a run)."""
    import csv
    import io

    payload = {
        "summary": report.summary(),
        "runs": [asdict(r) for r in report.results],
        "ensemble_top1_per_fold": report.ensemble_top1,
        "config": config,
    }
    atomic_write_bytes(out_dir / "cv.json", json.dumps(payload, indent=1).encode())
    names = list(report.results[0].perturbed) if report.results else []
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["seed", "fold", "n_val", "top1", "top5", "macro_f1", *names, "seconds"])
    for r in report.results:
        w.writerow([r.seed, r.fold, r.n_val, f"{r.top1:.4f}", f"{r.top5:.4f}",
                    f"{r.macro_f1:.4f}", *(f"{r.perturbed[n]:.4f}" for n in names),
                    f"{r.seconds:.1f}"])  # fmt: skip
    atomic_write_bytes(out_dir / "cv.csv", buf.getvalue().encode())


def format_stats(stats: dict[str, float], percent: bool = True) -> str:
    """``98.2 ± 1.1 %`` (or ``0.981 ± 0.011``) of a summary entry."""
    if percent:
        return f"{100 * stats['mean']:.2f} ± {100 * stats['sd']:.2f}%"
    return f"{stats['mean']:.4f} ± {stats['sd']:.4f}"


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """``(metric, "mean ± sd")`` rows of a :meth:`CVReport.summary`, for a table or a log."""
    rows = [
        ("top-1", format_stats(summary["top1"])),
        ("top-5", format_stats(summary["top5"])),
        ("macro-F1", format_stats(summary["macro_f1"], percent=False)),
    ]
    if "robust_top1" in summary:
        rows.append(("top-1 perturbed (mean of 5)", format_stats(summary["robust_top1"])))
        rows += [(f"  {name}", format_stats(summary[f"top1_{name}"]))
                 for name in ROBUSTNESS if f"top1_{name}" in summary]  # fmt: skip
    from islr.evaluation.metrics import WEBCAM

    webcam = [name for name in WEBCAM if f"top1_{name}" in summary]
    if webcam:
        rows.append(("top-1 webcam suite (mean)", format_stats(summary["webcam_top1"])))
        rows += [(f"  {name}", format_stats(summary[f"top1_{name}"])) for name in webcam]
    if "ensemble_top1" in summary:
        seeds = len(summary["seeds"])
        rows.append((f"top-1, {seeds} seeds averaged", format_stats(summary["ensemble_top1"])))
    if "worst_fold_top1" in summary:
        rows.append(("top-1 of the worst fold", f"{100 * summary['worst_fold_top1']:.2f}%"))
    rows.append(("seconds per run", f"{summary['seconds_per_run']['mean']:.0f}"))
    return rows


__all__ = [
    "CVReport",
    "FoldJob",
    "FoldResult",
    "cross_validate",
    "fold_jobs",
    "format_stats",
    "ray_job_runner",
    "read_fold_result",
    "run_fold",
    "summary_rows",
]
