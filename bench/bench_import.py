"""Import speed per format, on files generated at the real formats' sizes.

    python bench/bench_import.py [--files 2000] [--workers 0] [--formats gislr,mpdata,...]

Writes, into a temporary folder, ``--files`` inputs of each format as the public data has them:

- ``gislr``: Kaggle asl-signs parquet files (frame, row_id, type, landmark_index, x, y, z; 543
  rows per frame; snappy), frame counts drawn to the corpus' published statistics (94,477 files,
  2 to 537 frames, mean 37.9: a log-normal clipped to 2..537), hands NaN in a third of frames;
- ``seed-npy``: (T, 408) float32, T as INCLUDE videos (36-154 frames, median 60; the notebook
  kept at most 300), zeros where nothing was detected, with file_to_label.json;
- ``mpdata``: MP_Data sequences of 30 frames x 1662 float64 values (one folder per sequence);
- ``npy``: (30, 150) float64 arrays (75 points x (x, y)), as include-greetings-holistic;
- ``include-json``: INCLUDE keypoint JSON (pose + 2 hands, x/y lists), T as above;
- ``pose``: pose-format files of holistic136 points (as ``islr export-data --format pose``);
- ``openhands``: OpenHands pose pickles, (T, 75, 3) float64 keypoints + confidences;

then imports each into a fresh cache with ``--workers`` threads (0 = default), then again (every
file unchanged: the resume path). Prints per format: files/s (wall clock), the CPU time per file
(all threads of this process), the files/s that the CPU time allows on this machine's CPUs when
nothing else runs (CPUs / CPU time per file), and the rerun's files/s. The issue's target: GISLR
at >= 300 files/s on this 2-core machine. Wall-clock figures fall when other processes share
the CPUs (the load average is printed): run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GISLR_TYPES = (("face", 468), ("left_hand", 21), ("pose", 33), ("right_hand", 21))


def gislr_frame_counts(n: int, rng: np.random.Generator) -> np.ndarray:
    # log-normal with mean 37.9 (sigma 0.75), clipped to the corpus' 2..537
    sigma = 0.75
    mu = np.log(37.9) - sigma**2 / 2
    return np.clip(np.round(rng.lognormal(mu, sigma, n)), 2, 537).astype(int)


def write_gislr(root: Path, n: int, rng: np.random.Generator) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = ["path,participant_id,sequence_id,sign"]
    per_frame_type = [t for t, k in GISLR_TYPES for _ in range(k)]
    per_frame_index = np.concatenate([np.arange(k) for _, k in GISLR_TYPES]).astype(np.int16)
    for i, t in enumerate(gislr_frame_counts(n, rng)):
        participant, sequence = 1000 + i % 21, 10_000_000 + i
        rel = f"train_landmark_files/{participant}/{sequence}.parquet"
        frames = np.repeat(np.arange(20, 20 + t, dtype=np.int16), 543)
        xyz = rng.random((t * 543, 3))
        hands = np.tile(np.isin(np.array(per_frame_type), ["left_hand", "right_hand"]), t)
        absent = np.repeat(rng.random(t) < 0.33, 543) & hands
        xyz[absent] = np.nan
        table = pa.table(
            {
                "frame": frames,
                "row_id": [
                    f"{f}-{ty}-{k}"
                    for f, ty, k in zip(
                        frames, per_frame_type * t, np.tile(per_frame_index, t), strict=True
                    )
                ],
                "type": per_frame_type * t,
                "landmark_index": np.tile(per_frame_index, t),
                "x": xyz[:, 0],
                "y": xyz[:, 1],
                "z": xyz[:, 2],
            }
        )
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / rel)
        rows.append(f"{rel},{participant},{sequence},sign{i % 250}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")


def include_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.round(rng.lognormal(np.log(60), 0.3, n)), 36, 154).astype(int)


def write_seed(root: Path, n: int, rng: np.random.Generator) -> None:
    labels = {}
    for i, t in enumerate(include_lengths(n, rng)):
        values = rng.random((t, 408)).astype(np.float32)
        values[rng.random(t) < 0.3, 132:195] = 0  # a hand not found
        np.save(root / f"MVI_{i:05d}.npy", values)
        labels[f"MVI_{i:05d}.npy"] = f"sign {i % 123}"
    (root / "file_to_label.json").write_text(json.dumps(labels))


def write_mpdata(root: Path, n: int, rng: np.random.Generator) -> None:
    for i in range(n):
        folder = root / "MP_Data" / f"sign{i % 10}" / str(i)
        folder.mkdir(parents=True)
        for f in range(30):
            np.save(folder / f"{f}.npy", rng.random(1662))


def write_npy(root: Path, n: int, rng: np.random.Generator) -> None:
    for i in range(n):
        folder = root / f"sign{i % 9}"
        folder.mkdir(exist_ok=True)
        np.save(folder / f"MVI_{i:05d}_skip_2.npy", rng.random((30, 150)))


def write_include_json(root: Path, n: int, rng: np.random.Generator) -> None:
    for i, t in enumerate(include_lengths(n, rng)):
        d = {"uid": f"sign{i % 50}_MVI_{i:05d}", "label": f"sign{i % 50}", "n_frames": int(t)}
        for key, k in (("pose", 33), ("hand1", 21), ("hand2", 21)):
            for c in "xy":
                d[f"{key}_{c}"] = rng.random((t, k)).round(6).tolist()
        (root / f"{d['uid']}.json").write_text(json.dumps(d))


def write_pose(root: Path, n: int, rng: np.random.Generator) -> None:
    from islr.datasets.export import sequence_to_pose_bytes
    from islr.landmarks import LandmarkSequence

    for i, t in enumerate(include_lengths(n, rng)):
        data = rng.random((t, 136, 3)).astype(np.float32)
        data[rng.random(t) < 0.3, :21] = np.nan
        seq = LandmarkSequence(data, "holistic136", fps=25.0)
        seq.extra.update(image_width=1920, image_height=1080)
        folder = root / f"sign{i % 50}"
        folder.mkdir(exist_ok=True)
        (folder / f"MVI_{i:05d}.pose").write_bytes(sequence_to_pose_bytes(seq))


def write_openhands(root: Path, n: int, rng: np.random.Generator) -> None:
    import pickle

    for i, t in enumerate(include_lengths(n, rng)):
        folder = root / f"{i % 50}. sign{i % 50}"
        folder.mkdir(exist_ok=True)
        d = {"keypoints": rng.random((t, 75, 3)), "confidences": rng.random((t, 75))}
        (folder / f"MVI_{i:05d}.pkl").write_bytes(pickle.dumps(d, protocol=4))


WRITERS = {
    "gislr": write_gislr,
    "seed-npy": write_seed,
    "mpdata": write_mpdata,
    "npy": write_npy,
    "include-json": write_include_json,
    "pose": write_pose,
    "openhands": write_openhands,
}


def run_import(fmt: str, src: Path, out: Path, workers: int | None):
    from islr.datasets.formats import import_format

    options = {"frame_layout": "hands_pose75:xy"} if fmt == "npy" else {}
    source = src / "MP_Data" if fmt == "mpdata" else src
    start, cpu = time.perf_counter(), time.process_time()
    summary = import_format(fmt, source, out, workers=workers, **options)
    return summary, time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--formats", default=",".join(WRITERS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        print(f"unknown formats {unknown}; known: {', '.join(WRITERS)}", file=sys.stderr)
        return 2
    import os

    cpus = len(os.sched_getaffinity(0))
    print(f"{args.files} files per format, workers {args.workers or 'default'}, {cpus} CPUs")
    print(f"load average before: {os.getloadavg()[0]:.1f} (other processes share these CPUs)")
    print(
        f"{'format':14}{'MB/file':>9}{'frames':>8}{'files/s':>9}{'CPU ms/file':>13}"
        f"{'CPU-bound files/s':>19}{'rerun files/s':>15}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        for fmt in formats:
            rng = np.random.default_rng(args.seed)
            src = Path(tmp) / fmt / "src"
            src.mkdir(parents=True)
            WRITERS[fmt](src, args.files, rng)
            size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
            out = Path(tmp) / fmt / "cache"
            first, seconds, cpu = run_import(fmt, src, out, args.workers or None)
            again, rerun_seconds, _ = run_import(fmt, src, out, args.workers or None)
            from islr.landmarks import LandmarkCache

            entries = LandmarkCache(out).entries()
            frames = np.mean([e.n_frames for e in entries]) if entries else 0
            ok = first.imported == args.files and again.skipped == args.files
            print(
                f"{fmt:14}{size / args.files / 1e6:9.3f}{frames:8.1f}"
                f"{args.files / seconds:9.0f}{cpu / args.files * 1000:13.2f}"
                f"{cpus * args.files / cpu:19.0f}{args.files / rerun_seconds:15.0f}"
                + ("" if ok else f"  (imported {first.imported}, failed {len(first.failures)})")
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
