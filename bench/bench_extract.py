"""Benchmark ``islr extract``: our machinery next to bare MediaPipe Holistic, in one run.

Measures, over the shared real videos repeated ``--repeat`` times (symlinks in a temp folder):

1. bare MediaPipe: decode with OpenCV + ``Holistic.process`` per frame, one fresh graph per video,
   in this process, nothing stored (the floor our pipeline cannot beat);
2. ``extract_folder`` with 1 worker: the same frames through our whole path (spawned worker,
   MediaPipe import, landmark gathering, serialisation, atomic cache writes);
3. ``extract_folder`` with 2 workers (and more with ``--workers``): scaling;
4. peak resident memory (RSS) per worker process.

Prints a table with frames/s and the ratios (targets: overhead <= 10 %, 2 workers >= 1.7x on an
idle machine). Usage: ``python bench/bench_extract.py [--repeat 3] [--workers 1 2]``.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="copies of each shared video")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
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
    print()
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
