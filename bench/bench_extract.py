"""Benchmark ``islr extract``: our machinery next to bare MediaPipe Holistic, in one run.

Measures, over the shared real videos repeated ``--repeat`` times (symlinks in a temp folder):

1. bare MediaPipe: decode with OpenCV + ``Holistic.process`` per frame, one fresh graph per video,
   in this process, nothing stored (the floor our pipeline cannot beat);
2. ``extract_folder`` with 1 worker: the same frames through our whole path (spawned worker,
   MediaPipe import, landmark gathering, serialisation, atomic cache writes);
3. ``extract_folder`` with 2 workers (and more with ``--workers``): scaling;
4. peak resident memory (RSS) per worker process;
5. with Ray installed, ``extract_folder(ray_address=...)`` on a local Ray instance with as many
   CPUs as the largest ``--workers``, next to the local runner with that many workers: "cold"
   starts and stops Ray inside the timed run (what ``islr extract --ray local`` costs), "warm"
   joins a Ray instance started beforehand (a cluster that is already up);
6. the driver's cost to write one sample (npz write + rename, manifest append + fsync), the
   ceiling on samples/s of a single cache writer whatever the cluster's size.

Prints a table with frames/s and the ratios (targets: overhead <= 10 %, 2 workers >= 1.7x on an
idle machine, Ray <= 10 % slower than local processes). Usage:
``python bench/bench_extract.py [--repeat 3] [--workers 1 2] [--no-ray]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


def bare_mediapipe(videos: list[Path]) -> tuple[int, float, float]:
    """Frames, wall seconds and CPU seconds for decode + Holistic on every frame, nothing else."""
    import cv2

    from islr.extract.holistic import new_holistic, quiet_native_stderr

    frames = 0
    with quiet_native_stderr():
        import mediapipe  # noqa: F401  (not timed: our workers import it too, but in parallel)

        started, cpu_started = time.perf_counter(), time.process_time()
        for video in videos:
            graph = new_holistic()
            cap = cv2.VideoCapture(str(video))
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                graph.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                frames += 1
            cap.release()
            graph.close()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    return frames, seconds, cpu_seconds


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ray_runs(
    video_dir: Path, tmp: Path, cpus: int, rounds: int
) -> tuple[list[tuple[str, object]], list[tuple[float, float]]]:
    """Ray rows, and (local, Ray) frames/s pairs measured back to back with Ray already up.

    Cold: Ray started and stopped inside the timed run (what ``--ray local`` costs once). Warm:
    a Ray instance that is already up, as a cluster is; each round runs the local pool and then
    Ray on the same videos, so a busy machine slows both sides of a pair alike.
    """
    try:
        import ray
    except ImportError:
        print("Ray rows skipped: Ray is not installed (pip install 'islr[ray]')")
        return [], []
    from islr.extract import extract_folder

    cold = extract_folder(video_dir, tmp / "cache_ray_cold", workers=cpus, ray_address="local")
    rows: list[tuple[str, object]] = [(f"Ray local, {cpus} CPUs, cold start", cold)]
    pairs = []
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        # the first tasks start Ray's worker processes; the timed runs then find them warm
        extract_folder(video_dir, tmp / "cache_ray_warmup", ray_address="auto", limit=cpus)
        for i in range(rounds):
            local = extract_folder(video_dir, tmp / f"cache_pair_local_{i}", workers=cpus)
            warm = extract_folder(video_dir, tmp / f"cache_pair_ray_{i}", ray_address="auto")
            pairs.append((local.frames_per_second, warm.frames_per_second))
            rows.append((f"Ray, {cpus} CPUs, warm, round {i + 1}", warm))
    finally:
        ray.shutdown()
    return rows, pairs


def driver_write_ms(cache_dir: Path, scratch: Path, n: int = 200) -> float:
    """Milliseconds the cache writer spends per sample, on this disk, with real payloads."""
    from islr.landmarks import LandmarkCache, ManifestEntry

    source = LandmarkCache(cache_dir)
    payloads = [(source.root / e.path).read_bytes() for e in source.entries()]
    with LandmarkCache(scratch).writer() as writer:
        started = time.perf_counter()
        for i in range(n):
            entry = ManifestEntry(id=f"s/{i}", label="x", n_frames=60, layout="holistic136")
            writer.add_bytes(payloads[i % len(payloads)], entry)
        seconds = time.perf_counter() - started
    size_kb = sum(len(p) for p in payloads) / len(payloads) / 1024
    print(f"sample file size: {size_kb:.0f} KB on average ({len(payloads)} samples)")
    return seconds / n * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="copies of each shared video")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    parser.add_argument("--rounds", type=int, default=3, help="local/Ray pairs, back to back")
    args = parser.parse_args()
    if not SHARED_VIDEOS.is_dir():
        print(f"skipped: {SHARED_VIDEOS} is absent (real videos are needed for this benchmark)")
        return 0

    from islr.extract import extract_folder

    sources = sorted(SHARED_VIDEOS.glob("*.mp4"))
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        video_dir = Path(tmp) / "videos"
        video_dir.mkdir()
        videos = []
        for copy in range(args.repeat):
            for source in sources:
                link = video_dir / f"{source.stem}_{copy}{source.suffix}"
                link.symlink_to(source)
                videos.append(link)

        print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
        print(f"videos: {len(videos)} ({len(sources)} shared videos x {args.repeat})")
        bare_frames, bare_seconds, bare_cpu = bare_mediapipe(videos)
        bare_fps = bare_frames / bare_seconds
        bare_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        rows = []
        for n in args.workers:
            cpu_before = _children_cpu_seconds()
            summary = extract_folder(video_dir, Path(tmp) / f"cache_{n}", workers=n)
            # The pool's workers are joined when extract_folder returns, so they count here.
            cpu_seconds = _children_cpu_seconds() - cpu_before
            if summary.failures:
                print(f"unexpected failures: {summary.failures}")
                return 1
            rows.append((n, summary, cpu_seconds))
        ray_rows, pairs = (
            ([], [])
            if args.no_ray
            else ray_runs(video_dir, Path(tmp), max(args.workers), args.rounds)
        )
        write_ms = driver_write_ms(Path(tmp) / f"cache_{args.workers[0]}", Path(tmp) / "writes")

    print()
    header = (
        f"{'run':<34}{'frames':>8}{'seconds':>10}{'frames/s':>10}{'ratio':>8}"
        f"{'CPU cores':>11}{'peak RSS':>12}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{'bare MediaPipe (this process)':<34}{bare_frames:>8}{bare_seconds:>10.2f}"
        f"{bare_fps:>10.1f}{1.0:>8.2f}{bare_cpu / bare_seconds:>11.2f}{bare_rss:>9.0f} MB"
    )
    one = next((s for n, s, _ in rows if n == 1), None)
    for n, s, cpu_seconds in rows:
        print(
            f"{f'islr extract, {n} worker(s)':<34}{s.frames:>8}{s.seconds:>10.2f}"
            f"{s.frames_per_second:>10.1f}{s.frames_per_second / bare_fps:>8.2f}"
            f"{cpu_seconds / s.seconds:>11.2f}"
            f"{s.peak_worker_rss_mb:>9.0f} MB"
        )
    by_workers = {n: s for n, s, _ in rows}
    # pairs: (local frames/s, Ray frames/s) of the local pool and Ray run back to back
    for name, s in ray_rows:
        print(
            f"{name:<34}{s.frames:>8}{s.seconds:>10.2f}{s.frames_per_second:>10.1f}"
            f"{s.frames_per_second / bare_fps:>8.2f}{'n/a':>11}{s.peak_worker_rss_mb:>9.0f} MB"
        )
    print()
    if ray_rows:
        cold = ray_rows[0][1]
        local = by_workers[max(args.workers)]
        print(
            f"Ray cold start vs the local {max(args.workers)}-worker run above: "
            f"{local.frames_per_second / cold.frames_per_second - 1:+.1%} time per frame"
        )
    if pairs:
        ratios = sorted(local_fps / ray_fps - 1 for local_fps, ray_fps in pairs)
        listed = ", ".join(f"{r:+.1%}" for r in ratios)
        print(
            f"Ray (warm) vs local processes, {max(args.workers)} CPUs, back-to-back pairs: "
            f"{listed}; median {ratios[len(ratios) // 2]:+.1%} time per frame (target <= 10%)"
        )
    print(
        f"driver write cost per sample (npz + manifest append + fsync): {write_ms:.2f} ms "
        f"-> one writer stores at most {1000 / write_ms:,.0f} samples/s"
    )
    if one is not None:
        overhead = 1 - one.frames_per_second / bare_fps
        print(
            f"overhead of islr extract (1 worker) vs bare MediaPipe: {overhead:+.1%} (target <= 10%)"
        )
        for n, s, _ in rows:
            if n > 1:
                print(
                    f"scaling 1 -> {n} workers: {s.frames_per_second / one.frames_per_second:.2f}x"
                    + (" (target >= 1.7x on an idle machine)" if n == 2 else "")
                )
    print("CPU cores = CPU seconds / wall seconds (MediaPipe runs its graph on several threads,")
    print("so one process already uses more than one core: that bounds the scaling on 2 cores)")
    print("peak RSS is per worker process (ru_maxrss); the bare row is this whole process")
    print(
        f"load average at the end: {os.getloadavg()[0]:.2f} (other jobs on the machine skew this)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
