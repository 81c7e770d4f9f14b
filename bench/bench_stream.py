"""Continuous signing: how well the streaming segmenter + classifier transcribe several signs in a
row, learned segmenter vs the heuristic, on streams of a cache split's clips played one after
another (:mod:`islr.datasets.streams`, no speed change, no augmentation: each clip keeps its
natural start and end).

Conditions: ``back-to-back`` (clips follow each other directly), ``0.5s-gaps`` (0.5 s with no
hands between clips), ``movement`` (non-sign movement, scratching / adjusting / waving, between
clips). ``--conditions`` also takes ``rest-0.5s`` (0.5 s of hands resting visibly between
clips) and ``varied`` (back to back, each clip at 0.8-1.25x speed, the stream through the
spatial augmentations: another body and camera). Per condition and segmenter:

- SER, the sign error rate: Levenshtein distance between the transcript (one token per ``sign``
  event, ``?`` per ``unknown``) and the true labels, summed over streams / the number of signs;
- exact: streams transcribed exactly;
- emitted/true: ``sign`` + ``unknown`` events per true sign (< 1: neighbours merged; > 1: split);
- delay: for each correctly transcribed sign (aligned by the Levenshtein path), the stream time
  of its event minus the end of the sign (the clip's raised-wrist span: islr.datasets.streams),
  median and 95th percentile, in seconds.

With ``--held-out FILE`` (a JSON list of labels the model was not trained on), streams that mix
known and held-out clips measure the unknown rejection: the share of held-out clips that yield
no ``sign`` event overlapping them, and the share of known clips still given their right label.

    python bench/bench_stream.py --cache CACHE --split val --model include50 \\
        [--segmenter FILE] [--streams 30] [--signs 4] [--seed 0] [--held-out FILE] [--out FILE]

``--thresholds 0.7,0.8,0.9`` adds a table of the learned segmenter at each unknown threshold
(SER per condition, and with ``--held-out`` the rejection and acceptance), from the same runs:
the segments do not depend on the threshold, so each stream is segmented once and a ``sign``
event under the threshold becomes ``unknown`` (the model's own signs only: no added signs).

Partial events are switched off (they never change the transcript) to keep the run short.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from islr.datasets.include import label_key  # noqa: E402
from islr.datasets.streams import Stream, StreamRecipe, build_stream  # noqa: E402
from islr.evaluation.streams import align  # noqa: E402
from islr.inference import Engine  # noqa: E402
from islr.inference.segmenter import SegmenterModel, merged_stream  # noqa: E402
from islr.landmarks import LandmarkCache  # noqa: E402
from islr.streaming import StreamSegmenter  # noqa: E402
from islr.training.segmenter import load_clips  # noqa: E402

CONDITIONS = {"back-to-back": "none", "0.5s-gaps": "no_hands", "movement": "movement"}
# harder ones, not in the default run: 0.5 s of hands resting visibly between signs; back to
# back with each clip at 0.8-1.25x speed and the stream seen by another body/camera
EXTRA_CONDITIONS = {"rest-0.5s": "rest", "varied": "none"}
VARIED = {"speed_range": (0.8, 1.25), "augment": True}
NO_PARTIALS = 10**9


def bench_recipe() -> StreamRecipe:
    """Clips as recorded: no speed change, no augmentation, no lead-in; 0.5 s gaps."""
    return StreamRecipe(
        speed_range=(1.0, 1.0),
        gap_seconds=(0.5, 0.5),
        lead_seconds=(0.0, 0.0),
        augment=False,
    )


def pick_sequences(
    labels: list[str], n_streams: int, n_signs: int, rng: np.random.Generator
) -> list[list[int]]:
    """``n_streams`` lists of ``n_signs`` clip indices with different labels."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    names = sorted(by_label)
    out = []
    for _ in range(n_streams):
        chosen = rng.choice(len(names), size=min(n_signs, len(names)), replace=False)
        out.append([int(rng.choice(by_label[names[c]])) for c in chosen])
    return out


def run_stream(segmenter: StreamSegmenter, stream: Stream) -> list[tuple[float, dict]]:
    """Push the stream frame by frame; ``(time the event came, event)`` of sign/unknown events."""
    segmenter.reset()
    out = []
    t = 0.0
    for i, frame in enumerate(stream.frames):
        t = i / stream.fps
        out += [(t, e) for e in segmenter.push(frame, t) if e["type"] in ("sign", "unknown")]
    out += [(t, e) for e in segmenter.flush() if e["type"] in ("sign", "unknown")]
    return out


def at_threshold(results: list[list[tuple[float, dict]]], threshold: float):
    """The events of runs made at threshold 0 as they are at ``threshold``."""
    return [
        [
            (t, {**e, "type": "unknown"} if e["type"] == "sign" and e["prob"] < threshold else e)
            for t, e in events
        ]
        for events in results
    ]


def token(event: dict) -> str:
    return event["label"] if event["type"] == "sign" else "?"


def score(streams: list[Stream], results: list[list[tuple[float, dict]]]) -> dict:
    edits = signs = exact = emitted = 0
    delays = []
    for stream, events in zip(streams, results, strict=True):
        truth = [s.label for s in stream.signs]
        hyp = [token(e) for _, e in events]
        dist, pairs = align(truth, hyp)
        edits += dist
        signs += len(truth)
        exact += dist == 0
        emitted += len(hyp)
        for ti, hi in pairs:
            delays.append(events[hi][0] - stream.signs[ti].end / stream.fps)
    return {
        "ser": edits / max(signs, 1),
        "exact": exact,
        "streams": len(streams),
        "emitted_per_sign": emitted / max(signs, 1),
        "delay_median": float(np.median(delays)) if delays else None,
        "delay_p95": float(np.percentile(delays, 95)) if delays else None,
    }


def rejection(streams: list[Stream], results, held_out: set[str]) -> dict:
    """Held-out clips with no sign event overlapping them; known clips with their label."""
    rejected = held = accepted = known = 0
    for stream, events in zip(streams, results, strict=True):
        for s in stream.signs:
            lo, hi = s.clip_start / stream.fps, s.clip_end / stream.fps
            over = [e for _, e in events if e["start"] <= hi and e["end"] >= lo]
            labels = {e["label"] for e in over if e["type"] == "sign"}
            if s.label in held_out:
                held += 1
                rejected += not labels
            else:
                known += 1
                accepted += s.label in labels
    return {
        "held_out_rejected": rejected / max(held, 1),
        "known_accepted": accepted / max(known, 1),
        "held_out_clips": held,
        "known_clips": known,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--model", required=True, help="classifier: .onnx, .pt, run folder or include50")
    p.add_argument("--segmenter", help="segmenter .onnx (default: the one beside the model)")
    p.add_argument("--streams", type=int, default=30)
    p.add_argument("--signs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--held-out", help="JSON list of labels the model was not trained on")
    p.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help=f"comma-separated, of {', '.join([*CONDITIONS, *EXTRA_CONDITIONS])}",
    )
    p.add_argument("--set", action="append", default=[], help="stream setting NAME=VALUE")
    p.add_argument("--thresholds", help="comma-separated unknown thresholds to tabulate too")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args()

    engine = Engine.load(args.model, threads=1)
    # the one given, else the one beside the model (Engine.load found it)
    tagger = (
        SegmenterModel.load(args.segmenter, engine.model_layout)
        if args.segmenter
        else engine.segmenter
    )
    if tagger is None:
        sys.exit("no segmenter: give --segmenter FILE")
    overrides = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    learned = replace(merged_stream(engine.stream, tagger), partial_every=NO_PARTIALS, **overrides)
    sweep = [float(x) for x in args.thresholds.split(",")] if args.thresholds else []
    raw: dict[str, list] = {}  # the learned segmenter's events at threshold 0, for the sweep

    def events(seg_name: str, streams: list[Stream], key: str) -> list:
        """Each stream's events; the learned segmenter's, when sweeping, kept at threshold 0
        under ``key`` and returned at the run's threshold."""
        results = [run_stream(segmenters[seg_name], s) for s in streams]
        if seg_name != "learned" or not sweep:
            return results
        raw[key] = results
        return at_threshold(results, learned.threshold)

    configs = {
        "learned": replace(learned, threshold=0.0) if sweep else learned,
        "heuristic": replace(engine.stream, segmenter="heuristic", partial_every=NO_PARTIALS),
    }
    clips = load_clips(LandmarkCache(args.cache), [args.split], engine.layout, engine.n_coords)
    # the cache's labels may be keys ("biglarge") of the model's names ("big / large")
    names = {label_key(name): name for name in engine.labels}
    clips = [(names.get(label_key(label), label), data) for label, data in clips]
    known = set(engine.labels)
    held_out = set(json.loads(Path(args.held_out).read_text())) if args.held_out else set()
    held_out = {names.get(label_key(label), label) for label in held_out}
    in_vocab = [c for c in clips if c[0] in known]
    recipe = bench_recipe()

    def classify(frames: np.ndarray) -> np.ndarray:
        return engine.predict_batch([frames])[0]

    segmenters = {
        name: StreamSegmenter(engine.model_layout, engine.labels, classify, cfg, tagger)
        for name, cfg in configs.items()
    }
    report: dict = {
        "cache": args.cache,
        "split": args.split,
        "model": args.model,
        "segmenter": tagger.source,
        "streams": args.streams,
        "signs": args.signs,
        "seed": args.seed,
        "learned_settings": learned.to_dict(),
        "conditions": {},
    }
    sequences = pick_sequences(
        [c[0] for c in in_vocab], args.streams, args.signs, np.random.default_rng(args.seed)
    )
    print(
        f"{len(in_vocab)} {args.split} clips of known signs; {args.streams} streams x "
        f"{args.signs} signs; model {args.model}; segmenter {tagger.source}; unknown "
        f"threshold {learned.threshold}"
    )
    print(
        f"{'condition':14} {'segmenter':10} {'SER':>7} {'exact':>7} {'emit/true':>9} "
        f"{'delay med':>9} {'p95':>6}"
    )
    streams_of: dict[str, list[Stream]] = {}
    for name in args.conditions.split(","):
        every = {**CONDITIONS, **EXTRA_CONDITIONS}
        gap = every[name]
        rng = np.random.default_rng([args.seed, list(every).index(name)])
        cond_recipe = replace(recipe, **VARIED) if name == "varied" else recipe
        streams = [
            build_stream(
                [in_vocab[i] for i in seq],
                engine.model_layout,
                rng,
                cond_recipe,
                [gap] * (len(seq) - 1),
            )
            for seq in sequences
        ]
        streams_of[name] = streams
        report["conditions"][name] = {}
        for seg_name in segmenters:
            r = score(streams, events(seg_name, streams, name))
            report["conditions"][name][seg_name] = r
            med = f"{r['delay_median']:.2f}s" if r["delay_median"] is not None else "-"
            p95 = f"{r['delay_p95']:.2f}s" if r["delay_p95"] is not None else "-"
            print(
                f"{name:14} {seg_name:10} {r['ser']:7.1%} {r['exact']:3d}/{r['streams']:<3d} "
                f"{r['emitted_per_sign']:9.2f} {med:>9} {p95:>6}",
                flush=True,
            )
    if held_out:
        mixed = [c for c in clips if c[0] in held_out or c[0] in known]
        sequences = pick_sequences(
            [c[0] for c in mixed], args.streams, args.signs, np.random.default_rng(args.seed + 1)
        )
        rng = np.random.default_rng([args.seed, 99])
        streams = [
            build_stream(
                [mixed[i] for i in seq], engine.model_layout, rng, recipe, ["none"] * (len(seq) - 1)
            )
            for seq in sequences
        ]
        report["unknown"] = {}
        mixed_streams = streams
        for seg_name in segmenters:
            r = rejection(streams, events(seg_name, streams, "unknown"), held_out)
            report["unknown"][seg_name] = r
            print(
                f"unknown rejection, {seg_name}: {r['held_out_rejected']:.1%} of "
                f"{r['held_out_clips']} held-out clips rejected, {r['known_accepted']:.1%} of "
                f"{r['known_clips']} known clips accepted (back to back)"
            )
    if sweep:
        report["thresholds"] = {}
        swept = [n for n in raw if n != "unknown"]
        print(f"learned segmenter by threshold: SER {' / '.join(swept)}"
              + ("; held-out rejected, known accepted" if "unknown" in raw else ""))  # fmt: skip
        for threshold in sweep:
            row = {n: score(streams_of[n], at_threshold(raw[n], threshold)) for n in swept}
            line = " / ".join(f"{row[n]['ser']:.1%}" for n in swept)
            if "unknown" in raw:
                row["unknown"] = rejection(
                    mixed_streams, at_threshold(raw["unknown"], threshold), held_out
                )
                line += (f"; {row['unknown']['held_out_rejected']:.1%}, "
                         f"{row['unknown']['known_accepted']:.1%}")  # fmt: skip
            report["thresholds"][str(threshold)] = row
            print(f"  {threshold:<5} {line}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
