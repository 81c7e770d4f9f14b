"""Teaching a model new signs without retraining: INCLUDE-50 with 10 signs held out of training.

    python bench/bench_fewshot.py [--data ../shared/data/include50] [--work build/fewshot]
        [--choices 5] [--held-out 10] [--shots 1,3,5] [--draws 5] [--config default] [--members 2]
        [--set key=value ...] (training overrides: compare recipes, each in its own --work)

For each choice i of the 10 held-out signs (``sorted(rng(i).choice(sorted(labels), 10))``, seed i):

1. trains the recipe ``--config`` on the official train split of the other 40 signs (one thread;
   a finished run in ``--work/choice{i}/run`` is reused, an interrupted one resumed), once per
   seed 0..``--members``-1, joined into an ensemble as the shipped include50 is (2 by default;
   ``--members 1``: single models);
2. adds the 10 held-out signs with k = 1, 3, 5 examples each from train (``--draws`` random
   draws of the examples per k), as ``islr enroll`` does: each example one prototype, plus
   ``TAKE_AUGMENTATIONS`` augmented copies of it, and a vocabulary head refitted on those and on
   the known signs' training embeddings as the model stores them
   (:func:`islr.vocabulary.fit_head`); then scores official val in the full 50-way setting
   (:func:`islr.vocabulary.vocabulary_log_scores`): top-1 on the val videos of the
   added signs, on those of the 40 known signs, and the known signs' top-1 by the classifier
   alone (40-way: nothing added), whose difference is what adding signs costs them. Scored for
   every offset of the added signs' logits (``HEAD_OFFSETS``), and for comparison for the older
   nearest-take rule (``a * max cosine + b``) at every calibration ``(a, b)`` of a grid and at
   the one fitted by simulated enrolment (:func:`~islr.vocabulary.fit_calibration`);
3. reports each choice with the offset (calibration) chosen on the OTHER choices (so no choice
   is scored with a setting fitted on its own val videos): the one that adds signs best while
   the known signs lose at most 1 point of top-1 (the issue's bound), for each k (the head) or
   averaged over k (the nearest take); and the
   setting chosen on all of them (for the head: per k, ``islr.vocabulary.ADDED_OFFSETS``).

Prints mean ± sd over the choices (each choice: the mean over its draws) as Markdown tables and
writes everything to ``--work/fewshot.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/include50")
    parser.add_argument("--cache", type=Path, default=None, help="an imported cache instead")
    parser.add_argument("--work", type=Path, default=REPO / "build/fewshot")
    parser.add_argument("--choices", type=int, default=5)
    parser.add_argument("--held-out", type=int, default=10)
    parser.add_argument("--shots", default="1,3,5")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--config", default="default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--members", type=int, default=2,
                        help="an ensemble of this many seeds per base model, as include50 ships")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a training config override, key=value (e.g. another loss)")  # fmt: skip
    args = parser.parse_args()

    from islr.landmarks import LandmarkCache

    cache_dir = args.cache or args.work / "cache"
    if args.cache is None:
        if not (args.data / "val").is_dir():
            print(f"{args.data}: INCLUDE-50 keypoints not found", file=sys.stderr)
            return 2
        from islr.datasets.importers import import_include_splits

        import_include_splits(args.data, cache_dir)
    entries = [e for e in LandmarkCache(cache_dir).entries() if e.label]
    labels = sorted({e.label for e in entries})
    shots = [int(k) for k in args.shots.split(",")]
    results = []
    for choice in range(args.choices):
        held = sorted(np.random.default_rng(choice).choice(labels, args.held_out, replace=False))
        held = [str(h) for h in held]
        run = train_base_model(args, cache_dir, entries, choice, held)
        t0 = time.perf_counter()
        result = score_choice(run, cache_dir, held, shots, args.draws, args.threads)
        result["choice"], result["held_out"] = choice, held
        results.append(result)
        best = best_calibration([result], shots, settings()["head"])
        print(f"choice {choice} ({', '.join(held)}), the head at its best offset: "
              + "; ".join(f"k={k}: added {r['added'][best]:.3f} known {r['known'][best]:.3f}"
                          for k, r in result["k"].items())
              + f" (alone {result['known_alone']:.3f})  [{time.perf_counter() - t0:.0f} s]",
              flush=True)  # fmt: skip
    table, chosen = summary_table(results, shots)
    print(table)
    out = args.work / "fewshot.json"
    out.write_text(json.dumps({"config": vars(args) | {"data": str(args.data),
                               "cache": str(cache_dir), "work": str(args.work)},
                               "grid": [c.to_dict() for c in calibration_grid()],
                               "calibration": chosen, "choices": results, "table": table},
                              indent=1, default=str))  # fmt: skip
    print(f"written: {out}")
    return 0


def train_base_model(args, cache_dir: Path, entries, choice: int, held: list[str]) -> Path:
    """The 40-sign model of ``choice``: trained on official train without ``held`` (reused when
    finished, resumed when interrupted); with ``--members`` N, the ensemble of seeds 0..N-1
    (seed s > 0 in ``run-seed{s}``), joined as ``ensemble{N}.pt``."""
    from islr.models import ensemble_checkpoints

    members = [train_member(args, cache_dir, entries, choice, held, seed)
               for seed in range(args.members)]  # fmt: skip
    if args.members == 1:
        return members[0]
    return ensemble_checkpoints(
        members, args.work / f"choice{choice}" / f"ensemble{args.members}.pt"
    )


def train_member(args, cache_dir: Path, entries, choice: int, held: list[str], seed: int) -> Path:
    from islr.training import load_config, train

    folder = args.work / f"choice{choice}"
    folder.mkdir(parents=True, exist_ok=True)
    label_file = folder / "train_labels.json"
    train_labels = {e.id: e.label for e in entries if e.split == "train" and e.label not in held}
    for path, content in ((folder / "held_out.json", held), (label_file, train_labels)):
        if not path.is_file() or json.loads(path.read_text()) != content:
            path.write_text(json.dumps(content))
    run = folder / ("run" if seed == 0 else f"run-seed{seed}")
    seeded = [f"seed={seed}"] if seed else []
    cfg = load_config(
        args.config,
        [*args.overrides, *seeded, f"data.label_file={label_file}", f"threads={args.threads}"],
    )
    history = run / "history.json"
    finished = history.is_file() and len(json.loads(history.read_text())) >= cfg.optim.epochs
    if (run / "best.pt").is_file() and finished:
        return run / "best.pt"
    resume = (run / "last.pt").is_file()
    print(f"choice {choice} seed {seed}: training on {len(json.loads(label_file.read_text()))} videos "
          f"({'resumed' if resume else 'new'})", flush=True)  # fmt: skip
    train(cfg, cache_dir, run, resume=resume)
    return run / "best.pt"


CALIBRATION_SCALES = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32)
CALIBRATION_THRESHOLDS = tuple(round(0.8 + 0.005 * i, 3) for i in range(41))  # cosine, 0.8-1


HEAD_OFFSETS = tuple(round(-2 + 0.25 * i, 2) for i in range(13))  # -2 .. 1


def calibration_grid() -> list:
    """Candidate ``(a, b)``: scales x cosines at which an added sign's score reaches 0."""
    from islr.modelfile import Calibration

    return [Calibration(a, round(-a * t, 4)) for a in CALIBRATION_SCALES
            for t in CALIBRATION_THRESHOLDS]  # fmt: skip


def settings() -> dict[str, list[int]]:
    """Indices of the scored settings, by method: every nearest-take calibration of the grid,
    then the simulated-enrolment calibration, then the refitted head at each added offset."""
    n = len(calibration_grid())
    return {
        "take": list(range(n)),
        "simulated": [n],
        "head": list(range(n + 1, n + 1 + len(HEAD_OFFSETS))),
    }


def score_choice(
    checkpoint: Path, cache_dir: Path, held: list[str], shots: list[int], draws: int, threads: int
) -> dict:
    """For every calibration of the grid and every k: added-sign and known-sign top-1 on val,
    50-way (means over ``draws`` draws of the examples); the known signs' 40-way top-1 alone;
    and the same with the calibration fitted by simulated enrolment on the training data."""
    from dataclasses import replace

    from islr.inference import Engine
    from islr.inference.enroll import (
        TAKE_AUGMENTATIONS,
        augmented_embeddings,
        choose_shots,
        embed_entries,
        labelled_entries,
        reference_from_samples,
    )
    from islr.landmarks import LandmarkCache
    from islr.vocabulary import Vocabulary, check_new_sign, fit_calibration, fit_head

    engine = Engine.load(checkpoint, threads=threads, vocabulary=False)
    known = engine.known_labels
    cache = LandmarkCache(cache_dir)
    train = embed_entries(engine, cache, labelled_entries(cache_dir, ("train",))[1])
    val = embed_entries(engine, cache, labelled_entries(cache_dir, ("val",))[1])
    truth = np.array(val.labels)
    is_added = np.isin(truth, held)
    alone = np.array(known)[val.logits.argmax(1)]
    index = {label: i for i, label in enumerate(known)}
    on_known = np.array([label in index for label in train.labels])
    y = np.array([index[label] for label in np.array(train.labels)[on_known]])
    simulated = fit_calibration(train.logits[on_known], train.embeddings[on_known], y, shots=3)
    # as a model stores them: prototypes, duplicate threshold, embeddings for the head's refit
    takes = [engine.prepare(s, resampled=False) for s in cache.load_many(train.entries)]
    once = augmented_embeddings(engine, takes, 1, seed=1)
    reference = reference_from_samples(train, known, augmented=once)
    is_held = np.isin(train.labels, held)
    copies = np.zeros((len(train.entries), TAKE_AUGMENTATIONS, train.embeddings.shape[1]))
    held_takes = [t for t, h in zip(takes, is_held, strict=True) if h]
    copies[is_held] = augmented_embeddings(engine, held_takes, TAKE_AUGMENTATIONS).reshape(
        len(held_takes), TAKE_AUGMENTATIONS, -1
    )
    grid = calibration_grid()
    n_settings = len(grid) + 1 + len(HEAD_OFFSETS)
    by_id = {e.id: i for i, e in enumerate(train.entries)}
    per_k = {}
    for k in shots:
        hits = np.zeros((n_settings, draws, len(truth)), dtype=bool)
        flagged = np.zeros((draws, len(truth)), dtype=bool)  # a val video of a flagged sign
        n_flagged = 0
        for draw in range(draws):
            vocab = Vocabulary(engine.embedding_dim)
            for label, chosen in choose_shots(train.entries, held, k, draw).items():
                rows = [by_id[e.id] for e in chosen]
                check = check_new_sign(label, train.embeddings[rows], Vocabulary(vocab.embedding_dim),
                                       known, reference.known_prototypes,
                                       reference.duplicate_similarity)  # fmt: skip
                flagged[draw] |= check.flagged & (truth == label)
                n_flagged += check.flagged
                vocab = vocab.with_examples(label, train.embeddings[rows], f"{k} train samples",
                                            augmented=copies[rows].reshape(-1, copies.shape[2]))  # fmt: skip
            labels = np.array(vocab.labels(known))
            for c, calibration in enumerate([*grid, simulated]):
                predicted = labels[_scores(val, vocab, known, calibration).argmax(1)]
                hits[c, draw] = predicted == truth
            fitted = fit_head(vocab, reference, known, offsets={1: 0.0})
            for o, offset in enumerate(HEAD_OFFSETS):
                bias = fitted.head.bias.copy()
                bias[len(known) :] += offset
                shifted = replace(fitted, head=replace(fitted.head, bias=bias))
                predicted = labels[_scores(val, shifted, known, simulated).argmax(1)]
                hits[len(grid) + 1 + o, draw] = predicted == truth
        per_k[k] = {
            "added": hits[:, :, is_added].mean(axis=(1, 2)).tolist(),  # per calibration
            "known": hits[:, :, ~is_added].mean(axis=(1, 2)).tolist(),
            # the near-duplicate flag: how many added signs it flags, and how those fare
            "flagged_signs": n_flagged / (draws * len(held)),
            "flagged_hits": [int(hits[c][flagged].sum()) for c in range(n_settings)],
            "flagged_videos": int(flagged.sum()),
            "unflagged_hits": [int(hits[c][~flagged & is_added].sum()) for c in range(n_settings)],
            "unflagged_videos": int((~flagged & is_added).sum()),
        }
    return {
        "k": per_k,
        "known_alone": float((alone[~is_added] == truth[~is_added]).mean()),
        "n_val_added": int(is_added.sum()),
        "n_val_known": int((~is_added).sum()),
        "simulated_calibration": simulated.to_dict(),
        "duplicate_similarity": reference.duplicate_similarity,
    }


def _scores(samples, vocab, known, calibration) -> np.ndarray:
    from islr.vocabulary import vocabulary_log_scores

    return vocabulary_log_scores(samples.logits, samples.embeddings, vocab, known, calibration)


def known_loss(result: dict, c: int, k: int) -> float:
    return result["known_alone"] - result["k"][k]["known"][c]


def best_calibration(
    results: list[dict], shots: list[int], candidates: list[int], max_loss: float = 0.01
) -> int:
    """The setting among ``candidates`` that adds signs best (top-1 on the added signs, averaged
    over k and ``results``) while the known signs lose at most ``max_loss`` (averaged alike); the
    one that loses least when none does."""

    def mean(values) -> float:
        return float(np.mean(list(values)))

    loss = {c: mean(known_loss(r, c, k) for r in results for k in shots) for c in candidates}
    added = {c: mean(r["k"][k]["added"][c] for r in results for k in shots) for c in candidates}
    allowed = [c for c in candidates if loss[c] <= max_loss + 1e-9]
    if not allowed:
        return min(candidates, key=lambda c: (loss[c], -added[c]))
    return max(allowed, key=lambda c: (added[c], -loss[c]))


def setting_name(c: int) -> str:
    grid = calibration_grid()
    if c < len(grid):
        return f"({grid[c].scale:g}, {grid[c].bias:g})"
    if c == len(grid):
        return "simulated"
    return f"{HEAD_OFFSETS[c - len(grid) - 1]:+g}"


def summary_table(results: list[dict], shots: list[int]) -> tuple[str, dict]:
    """Mean ± sd over the choices, each scored with the setting chosen on the OTHER choices
    (leave one choice out), for the refitted head and for the nearest take; plus the settings
    chosen on all of them."""
    grid = calibration_grid()
    methods = settings()

    def mean_sd(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"

    def rows(chosen: dict[int, list[int]], title: str) -> list[str]:
        """``chosen[k][i]``: the setting choice i is scored with at k."""
        lines = [f"| {title} | k | added signs top-1 (%) | known signs top-1, 50-way (%) | "
                 "known signs alone, 40-way (%) | known signs lose (points) |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for k in shots:
            added = [r["k"][k]["added"][c] for r, c in zip(results, chosen[k], strict=True)]
            known = [r["k"][k]["known"][c] for r, c in zip(results, chosen[k], strict=True)]
            alone = [r["known_alone"] for r in results]
            loss = [a - b for a, b in zip(alone, known, strict=True)]
            lines.append(f"| | {k} | {mean_sd(added)} | {mean_sd(known)} | {mean_sd(alone)} "
                         f"| {mean_sd(loss)} |")  # fmt: skip
        return lines

    def held_out_choice(candidates: list[int], ks: list[int]) -> list[int]:
        """Per choice, the best setting on the other choices (averaged over ``ks``)."""
        if len(results) == 1:
            return [best_calibration(results, ks, candidates)]
        return [best_calibration(results[:i] + results[i + 1 :], ks, candidates)
                for i in range(len(results))]  # fmt: skip

    # the head's offset is chosen for each k (islr's offset depends on the number of examples);
    # a nearest-take calibration, one for all k
    head = {k: held_out_choice(methods["head"], [k]) for k in shots}
    take_per_choice = held_out_choice(methods["take"], shots)
    take = {k: take_per_choice for k in shots}
    simulated = {k: methods["simulated"] * len(results) for k in shots}
    head_all = {k: best_calibration(results, [k], methods["head"]) for k in shots}
    take_all = best_calibration(results, shots, methods["take"])
    n = len(results)
    flag_lines = []
    for k in shots:
        share = statistics.mean(r["k"][k]["flagged_signs"] for r in results)
        fh = sum(r["k"][k]["flagged_hits"][c] for r, c in zip(results, head[k], strict=True))
        fv = sum(r["k"][k]["flagged_videos"] for r in results)
        uh = sum(r["k"][k]["unflagged_hits"][c] for r, c in zip(results, head[k], strict=True))
        uv = sum(r["k"][k]["unflagged_videos"] for r in results)
        flag_lines.append(f"k={k}: {100 * share:.0f}% of the added signs flagged as too close to a "
                          f"known sign; top-1 on their val videos {100 * fh / max(fv, 1):.0f}% "
                          f"(n={fv}) vs {100 * uh / max(uv, 1):.0f}% on the others' (n={uv})")  # fmt: skip
    per_k = "; ".join(f"k={k}: {', '.join(setting_name(c) for c in head[k])}" for k in shots)
    lines = [
        *rows(head, "refitted head (islr's), offset for each k chosen on the other choices"),
        "",
        *rows(take, "nearest take, calibration chosen on the other choices"),
        "",
        *rows(simulated, "nearest take, calibration fitted by simulated enrolment"),
        "",
        f"mean ± sd over {n} choices of the held-out signs; per choice "
        f"~{sum(r['n_val_added'] for r in results) / n:.0f} val videos of added signs and "
        f"~{sum(r['n_val_known'] for r in results) / n:.0f} of known ones. Offsets of the head "
        f"chosen per choice, {per_k}; on all {n} choices: "
        + ", ".join(f"k={k}: {setting_name(c)}" for k, c in head_all.items())
        + f". Nearest-take calibrations per choice: "
        f"{', '.join(setting_name(c) for c in take_per_choice)}; on all: {setting_name(take_all)}.",
        "",
        "Near-duplicate flag (nearest known sign's mean training embedding at or above the "
        "model's duplicate threshold, "
        + ", ".join(f"{r['duplicate_similarity']:.3f}" for r in results)
        + "), scored with the refitted head:",
        *[f"- {line}" for line in flag_lines],
    ]
    chosen = {
        "head_offsets": {k: HEAD_OFFSETS[c - len(grid) - 1] for k, c in head_all.items()},
        "take_calibration": grid[take_all].to_dict(),
    }
    return "\n".join(lines), chosen


if __name__ == "__main__":
    sys.exit(main())
