"""``islr synth``, ``islr labels``, ``islr import``: where the samples of a cache come from."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from islr.cli.common import console, make_progress, out, user_errors


def synth(
    out_dir: Path = typer.Option(..., "--out", help="Cache folder to create."),
    classes: int = typer.Option(20, "--classes", help="Number of sign classes."),
    per_class: int = typer.Option(15, "--per-class", help="Samples per class."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same cache."),
    signers: int = typer.Option(6, "--signers", help="Number of synthetic signers."),
    val_signers: int = typer.Option(
        2, "--val-signers", help="Signers held out as the val split (the last ones)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the samples of an existing cache."
    ),
) -> None:
    """Write a cache of synthetic signs (holistic136 layout), split train/val by signer."""
    from islr.datasets.synthetic import write_synthetic_cache

    with user_errors(), make_progress() as progress:
        task = progress.add_task("synth", total=classes * per_class, status="")
        summary = write_synthetic_cache(
            out_dir,
            n_classes=classes,
            per_class=per_class,
            seed=seed,
            n_signers=signers,
            val_signers=val_signers,
            overwrite=overwrite,
            on_sample=lambda done, total: progress.update(task, completed=done),
        )
    splits = ", ".join(f"{k} {v}" for k, v in sorted(summary.splits.items()))
    out.print(
        f"[bold]{summary.out}[/]: {summary.n_samples} synthetic samples, "
        f"{len(summary.labels)} classes ({splits}); val signers {summary.val_signers}, "
        f"left-handed signers {summary.left_handed_signers or 'none'}"
    )


def labels(
    cache_dir: Path = typer.Argument(..., help="Landmark cache folder."),
    classes: Path | None = typer.Option(
        None, "--classes", help="Keep only these classes (a file, one name per line)."
    ),
    min_samples: int = typer.Option(2, "--min-samples", help="Drop classes with fewer samples."),
    split: str = typer.Option(
        "auto",
        "--split",
        help="auto (keep splits already set, else stratified), keep, stratified, or lists.",
    ),
    split_lists: Path | None = typer.Option(
        None, "--split-lists", help="Folder with official lists (include50_train.txt ...)."
    ),
    list_prefix: str | None = typer.Option(
        None, "--list-prefix", help="Which lists in --split-lists: include50, include ..."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the stratified split."),
    val_frac: float = typer.Option(0.2, "--val-frac", help="Share of each class in val."),
) -> None:
    """Choose classes, set splits (written into the manifest) and write file_to_label.json."""
    from islr.datasets.labels import LabelsConfig, apply_labels

    config = LabelsConfig(
        classes_file=classes,
        min_samples=min_samples,
        split=split,
        split_lists=split_lists,
        list_prefix=list_prefix,
        seed=seed,
        val_frac=val_frac,
    )
    with user_errors():
        report = apply_labels(cache_dir, config)
    out.print(f"[bold]{cache_dir}[/]: split by {report.split_mode}")
    table = Table("split", "samples")
    for name, count in sorted(report.split_counts.items()):
        table.add_row(name or "(none: excluded)", str(count))
    out.print(table)
    out.print(f"{report.n_samples} samples, {len(report.labels)} classes -> {report.file_to_label}")
    if report.dropped_classes:
        dropped = Table("dropped class", "samples", "why")
        for label, (count, why) in sorted(report.dropped_classes.items()):
            dropped.add_row(label, str(count), why)
        out.print(dropped)
    match = report.list_match
    if match is not None:
        for name, ids in (
            ("in no list", match.unlisted),
            ("matching several lists", match.ambiguous),
        ):
            if ids:
                shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
                console.print(f"[yellow]{len(ids)} samples {name}[/] (split left empty): {shown}")
        for name, lines in sorted(match.missing.items()):
            if lines:
                console.print(f"{len(lines)} of the {name} list's videos are not in the cache")


def import_(
    fmt: str = typer.Argument(..., help="include-json or pose."),
    src: Path = typer.Argument(..., help="A file or a folder (searched recursively)."),
    out_dir: Path = typer.Option(..., "--out", help="Cache folder (created or appended to)."),
    split: str = typer.Option("", "--split", help="Split to give the imported samples."),
    layout: str = typer.Option(
        "holistic136", "--layout", help="Layout for .pose files (include-json is hands_pose75)."
    ),
    label: str | None = typer.Option(
        None, "--label", help=".pose only: label for every file (default: its folder name)."
    ),
) -> None:
    """Import landmarks extracted elsewhere: INCLUDE keypoint JSON or pose-format .pose files."""
    from islr.datasets.importers import import_include_json, import_pose_files
    from islr.errors import DatasetError

    with user_errors(), make_progress() as progress:
        task = progress.add_task(f"import {fmt}", total=None, status="")

        def on_file(done: int, total: int, name: str) -> None:
            progress.update(task, completed=done, total=total, status=name[-40:])

        if fmt == "include-json":
            summary = import_include_json(src, out_dir, split=split, progress=on_file)
        elif fmt == "pose":
            summary = import_pose_files(
                src, out_dir, split=split, layout=layout, label=label, progress=on_file
            )
        else:
            raise DatasetError(f"unknown import format {fmt!r}; use include-json or pose")
    moved = f"{summary.resplit} moved to split {split!r}, " if summary.resplit else ""
    out.print(
        f"[bold]{out_dir}[/]: {summary.imported} imported, {summary.skipped} unchanged, "
        f"{moved}{len(summary.failures)} failed "
        f"({summary.found} files, {len(summary.labels - {''})} labels)"
    )
    for file, reason in summary.failures[:10]:
        console.print(f"[yellow]failed[/] {file}: {reason}")
    if len(summary.failures) > 10:
        console.print(f"... all failures are listed in {Path(out_dir) / 'failures.csv'}")
    if summary.failures and not (summary.imported or summary.skipped or summary.resplit):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("labels")(labels)
    app.command("import")(import_)
