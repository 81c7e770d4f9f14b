"""``islr info``: what a landmark cache holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.table import Table

from islr.cli.common import out, user_errors


def info(
    cache_dir: Path = typer.Argument(..., help="Landmark cache folder."),
    per_label: bool = typer.Option(False, "--per-label", help="List every label with its counts."),
) -> None:
    """Summarise a landmark cache: samples, labels, splits, layouts, failures."""
    from islr.landmarks import LandmarkCache

    with user_errors():
        cache = LandmarkCache(cache_dir)
        entries = cache.require_entries()
    splits = Counter(e.split or "(none)" for e in entries)
    layouts = Counter(e.layout for e in entries)
    labels = Counter(e.label for e in entries)
    frames = sorted(e.n_frames for e in entries)
    out.print(f"[bold]{cache_dir}[/]: {len(entries)} samples, {len(labels)} labels")
    out.print("splits: " + ", ".join(f"{k} {v}" for k, v in sorted(splits.items())))
    out.print("layouts: " + ", ".join(f"{k} {v}" for k, v in sorted(layouts.items())))
    out.print(
        f"frames per sample: min {frames[0]}, median {frames[len(frames) // 2]}, max {frames[-1]}"
    )
    failures = cache.failures()
    if failures:
        out.print(f"[yellow]{len(failures)} failed inputs[/] listed in {cache.failures_path}")
    if per_label:
        table = Table("label", "samples", *sorted(splits))
        by_label_split = Counter((e.label, e.split or "(none)") for e in entries)
        for label in sorted(labels):
            table.add_row(
                label,
                str(labels[label]),
                *(str(by_label_split[(label, s)]) for s in sorted(splits)),
            )
        out.print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
