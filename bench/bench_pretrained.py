"""The shipped include50 model and the recipe behind it: cross-validation and robustness.

    python bench/bench_pretrained.py [--data ../shared/data/include50] [--work bench-pretrained]
        [--config default] [--folds 5] [--seeds 0,1] [--workers 2]

1. Cross-validates the recipe ``--config`` over INCLUDE-50 train + val (766 videos, 5 stratified
   folds x 2 training seeds by default; ``islr cv``): mean ± sd top-1, top-5, macro-F1, the same on
   perturbed copies of each held-out fold (mirrored, rotated ±10°, zoomed 0.8-1.2x, 0.6-1.6x
   speed, 25% of hand detections dropped) and the top-1 of the seeds' models averaged (the
   shipped model is such an ensemble). Finished folds in ``--work`` are reused, so a rerun only
   prints (and an interrupted one resumes).
2. Evaluates the shipped ``include50`` model (ONNX, int8) on official val, clean and perturbed.
   The shipped model was trained on train + val, so these figures show the file works and how
   much the perturbations cost it, not its accuracy on unseen videos (that is step 1's).
3. Times one sequence on one thread and prints the file size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/include50")
    parser.add_argument("--work", type=Path, default=REPO / "bench-pretrained")
    parser.add_argument("--config", default="default")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--skip-cv", action="store_true")
    args = parser.parse_args()
    if not (args.data / "val").is_dir():
        print(f"{args.data}: INCLUDE-50 keypoints not found", file=sys.stderr)
        return 2

    from islr.datasets.importers import import_include_splits
    from islr.evaluation import evaluate_cache
    from islr.inference import Engine
    from islr.pretrained import pretrained_path
    from islr.training import load_config
    from islr.training.cv import ROBUSTNESS, cross_validate, summary_rows

    cache = args.work / "cache"
    import_include_splits(args.data, cache)

    if not args.skip_cv:
        seeds = tuple(int(s) for s in args.seeds.split(","))
        cfg = load_config(args.config)
        t0 = time.perf_counter()
        report = cross_validate(
            cfg.to_dict(), cache, args.work / f"cv-{Path(args.config).stem}", args.folds, seeds,
            workers=args.workers,
            on_result=lambda r: print(f"  seed {r.seed} fold {r.fold}: top-1 {r.top1:.4f} "
                                      f"({r.seconds:.0f} s)", flush=True),
        )  # fmt: skip
        s = report.summary()
        print(f"\n== {args.folds}-fold CV x seeds {list(seeds)} of '{args.config}' over "
              f"{s['n_samples']} videos ({time.perf_counter() - t0:.0f} s this run) ==")  # fmt: skip
        for metric, value in summary_rows(s):
            print(f"{metric:<30} {value}")

    print("\n== shipped include50 (trained on train + val: val is NOT held out) ==")
    onnx_path = pretrained_path("include50")
    engine = Engine.load("include50", threads=1)
    print(f"file {onnx_path.stat().st_size / 1e6:.2f} MB, {engine.metadata.get('members', 1)} "
          f"members, {engine.metadata.get('quantization', 'fp32')}")  # fmt: skip
    results = {}
    for name in [None, *ROBUSTNESS]:
        r = evaluate_cache(engine, cache, "val", name, seed=0)
        results[name or "clean"] = r.top1
        print(f"val {name or 'clean':<12} top-1 {r.top1:.4f} ({round(r.top1 * r.n)}/{r.n})")
    from islr.landmarks import LandmarkCache

    entry = LandmarkCache(cache).entries(split="val")[0]
    x = engine.prepare(LandmarkCache(cache).load(entry))[None]  # one real sequence
    for _ in range(20):
        engine.logits_batch(x)
    times = []
    for _ in range(300):
        t = time.perf_counter()
        engine.logits_batch(x)
        times.append(time.perf_counter() - t)
    print(f"one sequence, one thread: median {1000 * statistics.median(times):.2f} ms")
    (args.work / "pretrained.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
