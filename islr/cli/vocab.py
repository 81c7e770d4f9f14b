"""``islr enroll`` (teach a model new signs from a few recordings, no retraining) and
``islr vocab`` (list, rename, remove, export, import the added signs)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from islr.cli.common import console, fail, out, user_errors
from islr.cli.deploy import MODEL_HELP


def enroll(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    inputs: list[Path] = typer.Argument(
        None, help="With --label: recordings of that sign (videos, .npz, .pose or .json files)."
    ),
    out_model: Path = typer.Option(
        ...,
        "--out",
        help="The new model (.onnx or .pt; may be MODEL itself): the model plus "
        "its vocabulary file, NEW.vocab.json.",
    ),  # fmt: skip
    label: str | None = typer.Option(None, "--label", help="The sign the INPUTS show."),
    data: Path | None = typer.Option(None, "--data", help="A landmark cache to take signs from."),
    split: str = typer.Option("train", "--split", help="The cache's split ('all': every one)."),
    labels: str | None = typer.Option(
        None, "--labels", help="Comma-separated labels of the cache to add (default: all)."
    ),
    shots: int | None = typer.Option(
        None, "--shots", "-k", min=1, help="At most this many samples per label (default: all)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the choice of --shots samples."),
    force: bool = typer.Option(
        False, "--force", help="Add signs even when flagged as too close to another sign."
    ),
    threads: int = typer.Option(0, "--threads", help="Classifier threads (0 = default)."),
    device: str = typer.Option(
        "cpu", "--device", help="Where a .pt model runs: cpu, auto, cuda, cuda:N or mps."
    ),
) -> None:
    """Add signs to a model from a few examples each, without retraining: from a landmark cache
    (--data) or from recordings of one sign (--label NAME FILES...). A sign that already exists
    gets the examples added; a sign too close to another one is flagged and skipped (exit code 1)
    unless --force."""
    import numpy as np

    from islr.datasets.inputs import load_input
    from islr.errors import InputError
    from islr.inference import Engine
    from islr.inference.enroll import (
        embed_takes,
        enrol,
        known_label_for,
        write_model_with_vocabulary,
    )

    if (data is None) == (label is None):
        raise fail("give either --data CACHE or --label NAME with recordings")
    if label is not None and not inputs:
        raise fail("--label needs recordings of the sign (videos or landmark files)")
    if data is not None and inputs:
        raise fail("with --data, give no files (they would be ignored)")
    with user_errors():
        engine = Engine.load(model, threads=threads or None, device=device)
        if data is not None:
            takes, sources = _takes_from_cache(engine, data, split, labels, shots, seed)
        else:
            seqs = [load_input(path, engine.layout) for path in inputs]
            for path, seq in zip(inputs, seqs, strict=True):
                if np.isnan(seq.data).all():
                    raise InputError(f"{path}: no landmarks in any frame (nobody was detected)")
            name = known_label_for(label, engine.known_labels)
            takes = {name: embed_takes(engine, seqs)}
            sources = {name: ", ".join(p.name for p in inputs)}
        outcomes = enrol(engine, takes, sources, force)
        written = write_model_with_vocabulary(model, out_model, engine.vocabulary)
    table = Table("sign", "examples", "consistency", "nearest other sign", "result",
                  title=f"islr enroll -> {escape(str(out_model))}")  # fmt: skip
    for o in outcomes:
        c = o.check
        nearest = f"{escape(c.nearest[0])} ({c.nearest[1]:.3f})" if c.nearest else "-"
        result = "added" if o.added else "[red]skipped: too close[/]"
        if o.added and c.flagged:
            result = "[yellow]added (forced; too close)[/]"
        kind = " (known)" if c.label in engine.known_labels else ""
        table.add_row(escape(c.label) + kind, str(len(c.per_take)),
                      f"{min(c.per_take):.3f}", nearest, result)  # fmt: skip
    out.print(table)
    added = len(engine.labels) - len(engine.known_labels)
    out.print(f"{escape(str(out_model))}: {len(engine.known_labels)} known + {added} added signs; "
              f"vocabulary {escape(str(written))}")  # fmt: skip
    skipped = [o.check for o in outcomes if not o.added]
    if skipped:
        for c in skipped:
            console.print(f"[bold yellow]skipped[/] {escape(c.label)}: {escape(c.reason or '')}")
        raise typer.Exit(1)


def _takes_from_cache(engine, data: Path, split: str, labels: str | None, shots, seed: int):
    from islr.inference.enroll import choose_shots, embed_takes, known_label_for, labelled_entries

    cache, entries = labelled_entries(data, None if split == "all" else (split,))
    wanted = [s.strip() for s in labels.split(",") if s.strip()] if labels else None
    names = wanted or sorted({e.label for e in entries})
    chosen = choose_shots(entries, names, shots, seed)
    takes, sources = {}, {}
    for name, mine in chosen.items():
        label = known_label_for(name, engine.known_labels)
        takes[label] = embed_takes(engine, cache.load_many(mine))
        sources[label] = f"{data} split {split}: {len(mine)} samples (seed {seed})"
    return takes, sources


vocab_app = typer.Typer(
    help="The signs added to a model (its vocabulary file, X.vocab.json beside X.onnx): list, "
    "rename, remove, export, import.",
    no_args_is_help=True,
)


def _engine(model: Path):
    from islr.inference import Engine

    engine = Engine.load(model)
    engine.require_embedding()  # an older export has no vocabulary
    return engine


def _save(engine, vocab) -> None:
    from islr.vocabulary import save_vocabulary

    save_vocabulary(engine.vocabulary_file, engine.with_current_head(vocab))


@vocab_app.command("list")
def vocab_list(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    known: bool = typer.Option(
        False, "--known", help="Also list the signs the model was trained on."
    ),
) -> None:
    """The model's signs: the added ones (and with --known, the trained ones)."""
    with user_errors():
        engine = _engine(model)
    vocab = engine.vocabulary
    labels = engine.labels if known else [s.label for s in vocab.signs]
    rows = []
    for label in labels:
        sign = vocab.find(label)
        rows.append({
            "label": label,
            "kind": "known" if label in engine.known_labels else "added",
            "examples": sign.examples if sign else 0,
            "prototypes": len(sign.prototypes) if sign else 0,
            "sources": [p.get("source", "") for p in sign.provenance] if sign else [],
        })  # fmt: skip
    if as_json:
        out.print(json.dumps({"file": str(engine.vocabulary_file), "signs": rows}),
                  soft_wrap=True, highlight=False, markup=False)  # fmt: skip
        return
    table = Table("sign", "kind", "examples", "prototypes", "from",
                  title=f"{escape(str(engine.vocabulary_file))}")  # fmt: skip
    for r in rows:
        table.add_row(escape(r["label"]), r["kind"], str(r["examples"]), str(r["prototypes"]),
                      escape("; ".join(r["sources"])))  # fmt: skip
    out.print(table)
    out.print(f"{len(engine.known_labels)} known + {len(engine.labels) - len(engine.known_labels)} "
              "added signs")  # fmt: skip


@vocab_app.command("rename")
def vocab_rename(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    label: str = typer.Argument(..., help="An added sign."),
    new: str = typer.Argument(..., help="Its new name."),
) -> None:
    """Rename an added sign."""
    from islr.vocabulary import check_label

    with user_errors():
        engine = _engine(model)
        _save(engine, engine.vocabulary.renamed(label, new, engine.known_labels))
    new = check_label(new)  # as stored
    out.print(f"renamed {escape(label)} -> {escape(new)} in {escape(str(engine.vocabulary_file))}")


@vocab_app.command("remove")
def vocab_remove(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    labels: list[str] = typer.Argument(..., help="Added signs (or known signs' added examples)."),
) -> None:
    """Remove added signs (a known sign only loses its added examples)."""
    with user_errors():
        engine = _engine(model)
        vocab = engine.vocabulary
        for label in labels:
            vocab = vocab.removed(label, engine.known_labels)
        _save(engine, vocab)
    out.print(f"removed {', '.join(escape(x) for x in labels)} from "
              f"{escape(str(engine.vocabulary_file))}")  # fmt: skip


@vocab_app.command("export")
def vocab_export(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    out_file: Path = typer.Option(..., "--out", help="The JSON file to write."),
    labels: str | None = typer.Option(
        None, "--labels", help="Comma-separated signs (default: all)."
    ),
) -> None:
    """Write the added signs (or some of them) to a file, for another copy of the same model."""
    from dataclasses import replace

    from islr.errors import VocabularyError
    from islr.vocabulary import save_vocabulary

    with user_errors():
        engine = _engine(model)
        vocab = engine.vocabulary
        if labels:
            wanted = [s.strip() for s in labels.split(",") if s.strip()]
            missing = [w for w in wanted if vocab.find(w) is None]
            if missing:
                raise VocabularyError(f"no added signs named {', '.join(missing)}")
            chosen = [vocab.find(w) for w in wanted]
            vocab = replace(vocab, signs=tuple(s for s in vocab.signs if s in chosen))
        save_vocabulary(out_file, vocab)
    out.print(f"{escape(str(out_file))}: {len(vocab.signs)} signs")


@vocab_app.command("import")
def vocab_import(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    file: Path = typer.Argument(..., help="A vocabulary file written by islr vocab export."),
) -> None:
    """Add the signs of a vocabulary file (made with the same model) to the model's."""
    from islr.vocabulary import load_vocabulary

    with user_errors():
        engine = _engine(model)
        if not file.is_file():
            raise fail(f"{file}: no such file")
        other = load_vocabulary(file, engine.embedding_dim or 0)
        _save(engine, engine.vocabulary.merged(other))
    out.print(f"imported {len(other.signs)} signs into {escape(str(engine.vocabulary_file))}")


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll)
    app.add_typer(vocab_app, name="vocab")
