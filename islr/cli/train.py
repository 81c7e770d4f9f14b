"""``islr train``, ``islr evaluate``, ``islr demo``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from islr.cli.common import console, fail, make_progress, out, user_errors

DEMO_OVERRIDES = [
    "features.seq_len=32",
    "model.kwargs={dim: 96, stages: 1, conv_blocks: 2, heads: 4}",
    "optim.epochs=25",
    "optim.batch_size=32",
    "optim.lr=0.003",
]


def _config_help() -> str:
    from islr.configs import config_names  # not islr.training, which imports torch

    names = config_names()
    return (
        f"A shipped recipe ({' | '.join(names)}) or a YAML file. Default: default "
        "(the recipe of the shipped include50 model)."
    )


CONFIG_HELP = _config_help()
DEVICE_HELP = "Where to train: auto (a GPU when there is one), cpu, cuda, cuda:N or mps."


def _run_training(cfg, data: Path, out_dir: Path, resume: bool):
    from islr.training import train

    with make_progress() as progress:
        task = progress.add_task("train", total=cfg.optim.epochs, status="")
        state = {"status": ""}

        def on_step(epoch, step, steps, loss, acc):
            progress.update(
                task,
                completed=epoch - 1 + step / steps,
                status=f"epoch {epoch} loss {loss:.3f} acc {acc:.3f} {state['status']}",
            )

        def on_epoch(r):
            if r.val_acc is not None:
                state["status"] = f"| val loss {r.val_loss:.3f} acc {r.val_acc:.3f}"
            progress.update(task, completed=r.epoch, status=f"epoch {r.epoch} {state['status']}")

        result = train(cfg, data, out_dir, resume=resume, on_step=on_step, on_epoch=on_epoch)
    return result


def train_command(
    data: Path = typer.Option(..., "--data", help="Landmark cache with train (and val) splits."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder for checkpoints and reports."),
    config: str | None = typer.Option(None, "--config", help=CONFIG_HELP),
    epochs: int | None = typer.Option(None, "--epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    seed: int | None = typer.Option(None, "--seed"),
    val_from_train: float | None = typer.Option(
        None, "--val-from-train", help="Hold out this fraction of train (stratified) as val."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Any config value: key.sub=value."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN_DIR/last.pt."),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
) -> None:
    """Train a sign classifier on a landmark cache; writes best.pt, history, plots into --out."""
    from islr.errors import require

    require("torch", "islr train")
    from islr.models import count_parameters
    from islr.training import load_config

    extra = [f"{k}={v}" for k, v in [("optim.epochs", epochs), ("optim.batch_size", batch_size),
             ("optim.lr", lr), ("seed", seed), ("data.val_from_train", val_from_train),
             ("device", device)] if v is not None]  # fmt: skip
    with user_errors():
        cfg = load_config(config, [*overrides, *extra])
        if resume and not (out_dir / "last.pt").is_file():
            raise fail(f"{out_dir}/last.pt not found: nothing to resume")
        result = _run_training(cfg, data, out_dir, resume)
    from islr.models import load_classifier

    model, _ = load_classifier(out_dir / "best.pt")
    acc = f"{result.best_val_acc:.4f}" if result.best_val_acc is not None else "n/a (no val)"
    out.print(
        f"[bold green]done[/] {result.epochs_run} epochs in {result.seconds:.1f} s on {result.device}"
        f"{' (early stop)' if result.stopped_early else ''}; best epoch {result.best_epoch}, "
        f"val accuracy {acc}; {count_parameters(model):,} parameters"
    )
    out.print(f"run folder: {out_dir} (best.pt, last.pt, history.json, results.png, config.yaml)")


def evaluate_command(
    model: Path = typer.Argument(..., help="RUN_DIR, a .pt checkpoint or an .onnx model."),
    data: Path = typer.Option(..., "--data", help="Landmark cache to evaluate on."),
    split: str = typer.Option("val", "--split", help="Split to evaluate (val, test, train, all)."),
    perturb: str | None = typer.Option(
        None,
        "--perturb",
        help="Robustness: mirror, rotate, zoom, speed, drop-hands; a webcam condition: "
        "close-framing, frame-4:3, frame-1:1, frame-9:16, camera-above, camera-below, "
        "camera-side, fps-15, dropped-frames, fast-hands-lost, mirror-selfie; or webcam (all of "
        "those, one table).",
    ),
    out_dir: Path | None = typer.Option(None, "--out", help="Report folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the perturbation."),
) -> None:
    """Top-1, top-5, macro-F1, per-class table and confusion matrix of a model on a split."""
    from islr.evaluation import WEBCAM, evaluate_cache, write_report
    from islr.inference import Engine

    if perturb == "webcam":
        with user_errors():
            engine = Engine.load(model)
            clean = evaluate_cache(engine, data, split, None, seed)
            results = {name: evaluate_cache(engine, data, split, name, seed) for name in WEBCAM}
        table = Table("condition", "top-1", title=f"webcam suite, split {split} (n={clean.n})")
        table.add_row("clean", f"{clean.top1:.4f}")
        for name, r in results.items():
            table.add_row(name, f"{r.top1:.4f}")
        mean = sum(r.top1 for r in results.values()) / len(results)
        table.add_row("[bold]webcam suite (mean)[/]", f"[bold]{mean:.4f}[/]")
        out.print(table)
        return
    with user_errors():
        engine = Engine.load(model)
        result = evaluate_cache(engine, data, split, perturb, seed)
    from islr.pretrained import is_pretrained_name

    name = f"eval-{split}" + (f"-{perturb}" if perturb else "")
    if is_pretrained_name(model):  # never write into the installed package
        name, base = name.replace("eval-", f"eval-{model}-", 1), Path(".")
    else:
        base = model if model.is_dir() else model.parent
    report_dir = write_report(result, out_dir or base / name, f"{name} ({result.n} samples)")
    out.print(
        f"[bold]{name}[/]: top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  "
        f"macro-F1 {result.macro_f1:.4f}  n={result.n}"
    )
    if result.unknown:
        n_unknown = sum(result.unknown.values())
        console.print(
            f"[yellow]{n_unknown} samples of {len(result.unknown)} signs the model does not know "
            f"were not scored:[/] {', '.join(sorted(result.unknown)[:10])}"
        )
    out.print(f"report: {report_dir} (metrics.json, per_class.csv, confusion.png)")


def demo(
    out_dir: Path = typer.Option(Path("demo-out"), "--out", help="Where the demo writes."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (default 25)."),
) -> None:
    """The main job on built-in SYNTHETIC data: synthesise, train, evaluate, predict."""
    import shutil

    from islr.errors import require

    require("torch", "islr demo")

    from islr.datasets.synthetic import write_synthetic_cache
    from islr.evaluation import evaluate_cache, write_report
    from islr.inference import Engine
    from islr.landmarks import LandmarkCache
    from islr.training import load_config

    t0 = time.perf_counter()
    cache_dir, run_dir = out_dir / "synthetic-cache", out_dir / "run"
    console.rule("[bold]islr demo[/] — on SYNTHETIC signs (built-in data, not real signing)")
    with user_errors():
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
        with make_progress() as progress:
            task = progress.add_task("1/4 synthesise", total=20 * 15, status="")
            summary = write_synthetic_cache(
                cache_dir, n_classes=20, per_class=15, seed=0,
                on_sample=lambda done, total: progress.update(task, completed=done),
            )  # fmt: skip
        out.print(f"synthetic cache: {summary.n_samples} samples, {len(summary.labels)} signs")
        overrides = DEMO_OVERRIDES + ([f"optim.epochs={epochs}"] if epochs else [])
        cfg = load_config(None, overrides)
        console.print("[bold]2/4 train[/] the default model (demo size)")
        result = _run_training(cfg, cache_dir, run_dir, resume=False)
        console.print("[bold]3/4 evaluate[/] on held-out synthetic signers")
        engine = Engine.load(run_dir)
        metrics = evaluate_cache(engine, cache_dir, "val")
        report = write_report(metrics, run_dir / "eval-val", "demo: synthetic val")
        console.print("[bold]4/4 predict[/] one held-out sample")
        cache = LandmarkCache(cache_dir)
        sample = cache.entries(split="val")[0]
        top = engine.predict(cache.load(sample), top_k=3)
    table = Table("sign", "probability", title=f"prediction for {sample.id} (true: {sample.label})")
    for label, prob in top:
        table.add_row(label, f"{prob:.3f}")
    out.print(table)
    out.print(
        f"val (synthetic): top-1 {metrics.top1:.3f}, top-5 {metrics.top5:.3f}, macro-F1 "
        f"{metrics.macro_f1:.3f} on {metrics.n} samples; trained {result.epochs_run} epochs in "
        f"{result.seconds:.0f} s"
    )
    out.print(
        f"cache:      {cache_dir}\nrun:        {run_dir} (best.pt, results.png, history.json)"
    )
    out.print(f"evaluation: {report}")
    out.print(f"[bold green]demo done in {time.perf_counter() - t0:.0f} s[/]. Next: "
              f"islr predict {run_dir} {cache_dir}/{sample.path}  |  islr export {run_dir} "
              f"--out model.onnx  |  islr serve {run_dir}")  # fmt: skip


def cv_command(
    data: Path = typer.Option(..., "--data", help="Landmark cache with labelled samples."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the runs, cv.json and cv.csv."),
    config: str | None = typer.Option(None, "--config", help=CONFIG_HELP),
    folds: int = typer.Option(5, "--folds", "-k", min=2, help="Stratified folds."),
    seeds: str = typer.Option("0,1", "--seeds", help="Training seeds, comma-separated."),
    fold_seed: int = typer.Option(0, "--fold-seed", help="Seed of the fold assignment."),
    splits: str = typer.Option(
        "train,val", "--splits", help="Splits whose samples are pooled ('' = every labelled one)."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Any config value: key.sub=value."),
    workers: int = typer.Option(0, "--workers", help="Parallel runs (0 = one per core)."),
    robustness: bool = typer.Option(
        True, "--robustness/--no-robustness", help="Also score perturbed copies of each fold."
    ),
    ray: str | None = typer.Option(
        None, "--ray", help="Run the folds on Ray: local, auto or ray://host:port."
    ),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    webcam: bool = typer.Option(
        False, "--webcam", help="Also score each fold under the webcam conditions (see evaluate)."
    ),
    group_by: str | None = typer.Option(
        None,
        "--group-by",
        help="Group k-fold over this manifest field (e.g. signer): no value "
        "of it in two folds (`islr signers CACHE` infers INCLUDE's signers).",
    ),
) -> None:
    """Repeated stratified (with --group-by: group) k-fold CV of a recipe: mean ± sd top-1."""
    from islr.errors import require

    require("torch", "islr cv")
    from islr.evaluation.metrics import WEBCAM
    from islr.training import load_config
    from islr.training.cv import ROBUSTNESS, cross_validate, summary_rows

    with user_errors():
        try:
            seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
        except ValueError:
            raise fail(f"--seeds must be integers separated by commas, got {seeds!r}") from None
        cfg = load_config(config, [*overrides, *([f"device={device}"] if device else [])])
        from islr.models.device import resolve_device

        resolve_device(cfg.device)  # an absent GPU fails here, not in every fold's process
        split_list = tuple(s.strip() for s in splits.split(",") if s.strip())
        run_jobs = None
        if ray is not None:
            from islr.training.cv import ray_job_runner

            run_jobs = ray_job_runner(ray, num_cpus=workers or None)
        with make_progress() as progress:
            task = progress.add_task("cv", total=folds * len(seed_list), status="")

            def on_result(r) -> None:
                progress.advance(task)
                progress.update(task, status=f"seed {r.seed} fold {r.fold}: top-1 {r.top1:.3f}")

            report = cross_validate(
                cfg.to_dict(), data, out_dir, folds, seed_list, fold_seed, split_list,
                (ROBUSTNESS if robustness else ()) + (WEBCAM if webcam else ()), workers,
                on_result=on_result, run_jobs=run_jobs, group_by=group_by,
            )  # fmt: skip
    s = report.summary()
    kind = f"{folds}-fold CV by {group_by}" if group_by else f"{folds}-fold CV"
    table = Table("metric", "mean ± sd", title=f"{kind} × seeds {list(seed_list)} "
                  f"({s['n_samples']} samples, {len(report.results)} runs)")  # fmt: skip
    for metric, value in summary_rows(s):
        table.add_row(metric, value)
    out.print(table)
    out.print(f"report: {out_dir}/cv.json, {out_dir}/cv.csv")


def train_segmenter_command(
    data: Path = typer.Option(..., "--data", help="Landmark cache whose clips make the streams."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder (segmenter.pt, segmenter.onnx)."),
    split: str | None = typer.Option(
        None, "--split", help="Cache split(s), comma-separated (default: the recipe's, train)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="A YAML recipe (default: islr/configs/segmenter/include50.yaml)."
    ),
    steps: int | None = typer.Option(None, "--steps"),
    seed: int | None = typer.Option(None, "--seed"),
    overrides: list[str] = typer.Option([], "--set", help="Any recipe value: key.sub=value."),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
) -> None:
    """Train the learned sign segmenter (per-frame B/I/O tags) on streams synthesised from a
    cache's clips; writes segmenter.onnx, to ship as NAME.segmenter.onnx beside NAME.onnx."""
    from islr.errors import require

    require("torch", "islr train-segmenter")
    from islr.configs import SEGMENTER_CONFIG
    from islr.training.segmenter import load_segmenter_config, train_segmenter

    extra = [f"{k}={v}" for k, v in [("splits", split), ("steps", steps), ("seed", seed),
             ("device", device)] if v is not None]  # fmt: skip
    with user_errors():
        cfg = load_segmenter_config(config or SEGMENTER_CONFIG, [*overrides, *extra])
        with make_progress() as progress:
            task = progress.add_task("train-segmenter", total=cfg.steps, status="")

            def on_step(step: int, loss: float) -> None:
                progress.update(task, completed=step, status=f"loss {loss:.3f}")

            result = train_segmenter(cfg, data, out_dir, on_step=on_step)
    out.print(
        f"[bold green]done[/] {result['steps']} steps in {result['seconds']:.1f} s on "
        f"{result['clips']} clips; final loss {result['final_loss']:.3f}"
    )
    out.print(f"run folder: {out_dir} (segmenter.onnx, segmenter.pt, history.json, config.yaml)")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("train-segmenter")(train_segmenter_command)
    app.command("cv")(cv_command)
    app.command("evaluate")(evaluate_command)
    app.command("demo")(demo)
