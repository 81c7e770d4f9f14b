"""``islr synth``, ``islr labels``, ``islr import``: where the samples of a cache come from."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
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


def _size(text: str | None, option: str) -> tuple[int, int] | None:
    """``WxH`` -> ``(W, H)``."""
    from islr.errors import DatasetError

    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise DatasetError(f"{option} must be WxH in pixels, e.g. 640x480; got {text!r}") from None
    if w <= 0 or h <= 0:
        raise DatasetError(f"{option} must be positive, got {text!r}")
    return w, h


def import_(
    fmt: str = typer.Argument(
        ...,
        help="auto, include-json, pose, seed-npy, mpdata, npy, gislr or openhands "
        "(docs/formats.md).",
    ),
    src: Path = typer.Argument(..., help="A file or a folder (searched recursively)."),
    out_dir: Path = typer.Option(..., "--out", help="Cache folder (created or appended to)."),
    split: str = typer.Option("", "--split", help="Split to give the imported samples."),
    layout: str | None = typer.Option(
        None,
        "--layout",
        help="Cache layout to store (default: holistic136; hands_pose75 for openhands; for npy "
        "the frame layout's points). include-json always stores hands_pose75.",
    ),
    frame_layout: str | None = typer.Option(
        None,
        "--frame-layout",
        help="seed-npy, npy, mpdata: the order of the values in a frame: seed408, mp1662, "
        "mp258, mp126, LAYOUT:COORDS (hands_pose75:xy) or a layout file.",
    ),
    interleave: str | None = typer.Option(
        None, "--interleave", help="npy: point (x0,y0,x1,...) or coord (x0,x1,...,y0,...)."
    ),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="seed-npy, npy: label file (JSON {file: label}, or CSV file,label[,signer,split]).",
    ),
    image_size: str | None = typer.Option(
        None, "--image-size", help="WxH of the source videos, when known (e.g. 640x480)."
    ),
    pixel_scale: str | None = typer.Option(
        None, "--pixel-scale", help="openhands: WxH the x, y of pixel-unit files are divided by."
    ),
    label: str | None = typer.Option(
        None, "--label", help=".pose only: label for every file (default: its folder name)."
    ),
    limit: int | None = typer.Option(None, "--limit", help="gislr: only the first N rows."),
    workers: int = typer.Option(0, "--workers", "-j", help="Threads (0 = one per CPU core)."),
) -> None:
    """Import landmarks extracted elsewhere (resumable; bad files go to failures.csv).

    `islr import auto SRC --out CACHE` says which format it found and imports it.
    """
    from islr.datasets.formats import import_format

    with user_errors():
        options = {
            "split": split or None,
            "layout": layout,
            "frame_layout": frame_layout,
            "interleave": interleave,
            "labels": labels,
            "image_size": _size(image_size, "--image-size"),
            "pixel_scale": _size(pixel_scale, "--pixel-scale"),
            "label": label,
            "limit": limit,
            "workers": workers or None,
        }
        if fmt == "auto":
            from islr.datasets.detect import detect_format

            found = detect_format(src)
            out.print(f"[bold]{escape(str(src))}[/]: {found.format}: {escape(found.reason)}")
            fmt = found.format
            for key, value in found.options.items():
                options[key] = options[key] or value
        if fmt == "gislr":  # a missing extra is one line, before any progress bar
            from islr.datasets.gislr import require_pyarrow

            require_pyarrow("islr import gislr")
        try:
            with make_progress() as progress:
                task = progress.add_task(f"import {fmt}", total=None, status="")

                def on_file(done: int, total: int, name: str) -> None:
                    progress.update(task, completed=done, total=total, status=escape(name[-40:]))

                summary = import_format(fmt, src, out_dir, progress=on_file, **options)
        except KeyboardInterrupt:
            console.print(
                "[bold yellow]interrupted:[/] everything imported so far is saved; run the same "
                "command again to import the rest"
            )
            raise typer.Exit(130) from None
    moved = f"{summary.resplit} moved to split {split!r}, " if summary.resplit else ""
    out.print(
        f"[bold]{escape(str(out_dir))}[/]: {summary.imported} imported, {summary.skipped} "
        f"unchanged, {moved}{len(summary.failures)} failed "
        f"({summary.found} inputs, {len(summary.labels - {''})} labels)"
    )
    for file, reason in summary.failures[:10]:
        console.print(f"[yellow]failed[/] {escape(file)}: {escape(reason)}")
    if len(summary.failures) > 10:
        console.print(f"... all failures are listed in {Path(out_dir) / 'failures.csv'}")
    if summary.failures and not (summary.imported or summary.skipped or summary.resplit):
        raise typer.Exit(1)


def export_data(
    cache_dir: Path = typer.Argument(..., help="Landmark cache folder."),
    fmt: str = typer.Option("npy", "--format", help="npy or pose."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the files to."),
    frame_layout: str | None = typer.Option(
        None,
        "--frame-layout",
        help="npy: order of a frame's values (default: the cache layout's points, x, y[, z]).",
    ),
    split: str | None = typer.Option(None, "--split", help="Only this split."),
) -> None:
    """Write a cache's samples out as .npy arrays or .pose files, with labels.csv."""
    from islr.datasets.export import export_cache

    with user_errors():
        summary = export_cache(cache_dir, out_dir, fmt, frame_layout=frame_layout, split=split)
    layout = f" (frame layout {summary.frame_layout})" if summary.frame_layout else ""
    out.print(
        f"[bold]{escape(str(out_dir))}[/]: {summary.written} {fmt} files{layout}, labels.csv, "
        f"{len(summary.failures)} failed"
    )
    for sample, reason in summary.failures[:10]:
        console.print(f"[yellow]failed[/] {escape(sample)}: {escape(reason)}")
    if summary.failures:
        raise typer.Exit(1)


def signers(
    cache_dir: Path = typer.Argument(..., help="Landmark cache folder (with pose landmarks)."),
    groups: int = typer.Option(7, "--groups", min=2, help="Signers to find (INCLUDE: 7)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; leave the manifest."),
) -> None:
    """Infer who signed each clip (recording sessions + body proportions) and store it as the
    manifest field ``signer``, for `islr cv --group-by signer`."""
    from islr.datasets.signers import infer_cache_signers

    with user_errors():
        g = infer_cache_signers(cache_dir, groups, write=not dry_run)
    table = Table("signer", "clips", "sessions", title=f"{cache_dir}: {groups} signer groups")
    for name, n in g.sizes().items():
        table.add_row(name, str(n), str(g.sessions_of[name]))
    out.print(table)
    out.print(
        f"{len(g.group_of)} clips in {g.n_sessions} recording sessions; silhouette "
        f"{g.silhouette:.3f}, clips nearest their session's group {100 * g.agreement:.1f}%, "
        f"sessions taking turns on the same signs put in one group: {g.turn_pairs_merged} of "
        f"{g.turn_pairs}" + ("" if dry_run else "; written to the manifest as 'signer'")
    )


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("labels")(labels)
    app.command("import")(import_)
    app.command("export-data")(export_data)
    app.command("signers")(signers)
