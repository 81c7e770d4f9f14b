"""``islr synth``, ``islr labels``, ``islr import``: where the samples of a cache come from."""

from __future__ import annotations

from pathlib import Path

import typer

from islr.cli.common import make_progress, out, user_errors


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


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
