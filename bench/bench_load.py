"""Import INCLUDE-50 train + val (766 INCLUDE keypoint JSON files) into a temporary cache, then time
loading the whole cache into memory with ``islr.landmarks.load_cache_arrays``.

    python bench/bench_load.py [--data ../shared/data/include50] [--repeats 5]

Target: loading the 766-sample cache takes under 2 s. Prints the import time, the load time (best
and median of the repeats, cold first read included separately) and the ratio to the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from islr.datasets.importers import import_include_json
from islr.landmarks import load_cache_arrays

TARGET_S = 2.0
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "include50"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train/, val/")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (args.data / "train").is_dir():
        print(f"INCLUDE-50 JSON not found under {args.data} (needs train/ and val/)")
        return 2
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        train = import_include_json(args.data / "train", cache, split="train")
        t1 = time.perf_counter()
        val = import_include_json(args.data / "val", cache, split="val")
        t2 = time.perf_counter()
        n = train.imported + val.imported
        print(
            f"import include-json: {n} samples in {t2 - t0:.2f} s "
            f"(train {train.imported} in {t1 - t0:.2f} s, val {val.imported} in {t2 - t1:.2f} s; "
            f"{1000 * (t2 - t0) / max(n, 1):.1f} ms/sample)"
        )
        t0 = time.perf_counter()
        again = import_include_json(args.data / "train", cache, split="train")
        print(
            f"re-import of train (nothing changed): {again.skipped} skipped in "
            f"{time.perf_counter() - t0:.2f} s"
        )
        size_mb = sum(f.stat().st_size for f in cache.rglob("*.npz")) / 1e6
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            entries, seqs = load_cache_arrays(cache)
            times.append(time.perf_counter() - t0)
        frames = sum(s.n_frames for s in seqs)
        best, median = min(times), statistics.median(times)
        print(
            f"load_cache_arrays: {len(seqs)} samples, {frames} frames, {size_mb:.1f} MB on disk: "
            f"first (files in the OS cache) {times[0]:.3f} s, best {best:.3f} s, median {median:.3f} s "
            f"over {args.repeats} runs"
        )
        print(
            f"target < {TARGET_S:.1f} s: median is {median / TARGET_S:.2f} of the target "
            f"({'PASS' if median < TARGET_S else 'FAIL'})"
        )
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
