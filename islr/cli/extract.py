"""``islr extract``: videos -> landmark cache (MediaPipe Holistic, parallel, resumable)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from islr.cli.common import console, make_progress, out, user_errors


def extract(
    video_dir: Path = typer.Argument(
        ..., help="Folder of videos (searched recursively), or one video file."
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Landmark cache folder to fill."),
    layout: str = typer.Option("holistic136", "--layout", help="Landmark layout to store."),
    workers: int = typer.Option(
        0, "--workers", "-j", help="Worker processes (0 = one per CPU core)."
    ),
    frame_stride: int = typer.Option(
        1, "--frame-stride", help="Keep every N-th frame (stored fps = video fps / N)."
    ),
    limit: int = typer.Option(
        0, "--limit", help="Only the first N videos, sorted by path (0 = all)."
    ),
    max_side: int = typer.Option(
        0,
        "--max-side",
        help="Shrink frames whose long side exceeds this many pixels before inference "
        "(for very large videos; 0 = never). Not a speed knob.",
    ),
    ray_address: str = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="Run on Ray: 'local' (a Ray instance on this machine, --workers CPUs), 'auto' (the "
        "cluster this node is in), 'ray://HOST:PORT'. VIDEO_DIR must be at the same path on "
        "every node; this process writes the cache. Needs: pip install 'islr[ray]'.",
    ),
) -> None:
    """Extract MediaPipe Holistic landmarks of every video into a landmark cache.

    Labels come from folder names (INCLUDE's Category/12. word/MVI_1234.MOV -> word).
    A rerun skips videos already extracted and finishes the rest; failures go to failures.csv.
    Exit code: 0 all done, 1 some videos failed, 2 bad arguments or no videos, 130 Ctrl-C.
    """
    from islr.extract import ExtractInterrupted, extract_folder
    from islr.extract.holistic import require_video

    require_video("islr extract", load=False)

    progress = make_progress()
    task = None

    def on_progress(p) -> None:
        nonlocal task
        if task is None:
            if p.skipped:
                console.print(f"{p.skipped} videos already in the cache: skipped")
            starting = f"connecting to Ray ({ray_address})" if ray_address else "starting workers"
            task = progress.add_task("extract", total=p.total, status=starting)
        if p.last_error:
            console.print(f"[yellow]warning:[/] {escape(p.last_file)}: {escape(p.last_error)}")
        status = f"{p.videos_per_second:.2f} videos/s, {p.frames_per_second:.1f} frames/s"
        if p.failed:
            status += f", [yellow]{p.failed} failed[/]"
        progress.update(task, completed=p.done, status=status)

    try:
        with user_errors(), progress:
            summary = extract_folder(
                video_dir,
                out_dir,
                layout=layout,
                frame_stride=frame_stride,
                max_side=max_side or None,
                workers=workers or None,
                limit=limit or None,
                on_progress=on_progress,
                ray_address=ray_address,
            )
    except ExtractInterrupted as stop:
        _print_summary(stop.summary, out_dir)
        console.print(
            "[bold yellow]interrupted:[/] everything finished so far is saved; "
            "run the same command again to extract the rest"
        )
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        console.print("[bold yellow]interrupted[/] before any video was extracted")
        raise typer.Exit(130) from None
    _print_summary(summary, out_dir)
    if summary.failures:
        raise typer.Exit(1)


def _print_summary(summary, out_dir: Path) -> None:
    table = Table(title="islr extract", show_header=False)
    table.add_row("videos found", str(summary.found))
    table.add_row("already in cache (skipped)", str(summary.skipped))
    table.add_row("extracted now", str(summary.extracted))
    table.add_row("failed", f"[red]{summary.failed}[/]" if summary.failed else "0")
    table.add_row("frames", str(summary.frames))
    table.add_row("time", f"{summary.seconds:.1f} s")
    table.add_row("frames/s", f"{summary.frames_per_second:.1f}")
    table.add_row("workers" + (" (Ray CPUs)" if summary.ray else ""), str(summary.workers))
    if summary.peak_worker_rss_mb:
        table.add_row("peak memory per worker", f"{summary.peak_worker_rss_mb:.0f} MB")
    out.print(table)
    if summary.failures:
        failures = Table("failed file", "reason", title="failures (also in failures.csv)")
        for file, reason in summary.failures[:20]:
            failures.add_row(escape(file), escape(reason))
        if len(summary.failures) > 20:
            failures.add_row("...", f"{len(summary.failures) - 20} more in failures.csv")
        out.print(failures)
        console.print(f"[yellow]{summary.failed} failed[/]: see {out_dir / 'failures.csv'}")


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
