"""The batch runner behind ``islr extract``: a folder of videos -> a landmark cache.

Worker processes (``spawn`` context: a forked child hangs once the parent has built a MediaPipe
graph) each extract one video at a time and send back the serialised sequence; the parent is the
cache's single writer. Where the workers run is a :class:`JobExecutor`: this machine's processes
(:class:`LocalExecutor`) or Ray tasks on a cluster (:mod:`islr.extract.ray_executor`); the rest
(what to skip, what to write, what failed) is the same code for both. A video is skipped when the cache already holds it from the same source
file (same relative path, size and mtime) with the same settings, so a rerun after a crash or a
Ctrl-C finishes the rest. A bad video is recorded in ``failures.csv`` and the batch goes on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from islr.errors import VideoError
from islr.extract.holistic import ExtractOptions, require_video
from islr.extract.paths import VIDEO_EXTENSIONS, VideoFile, find_videos, label_from_path
from islr.landmarks import LandmarkCache, ManifestEntry

# A job whose worker died (MediaPipe or OpenCV aborting) this many times is recorded as failed.
MAX_CRASHES_PER_VIDEO = 2
WORKER_CRASHED = "the worker process crashed on this video"


@dataclass
class ExtractProgress:
    """Where a running extraction stands; passed to the ``on_progress`` callback."""

    total: int  # videos to extract in this run (not counting those skipped)
    skipped: int
    done: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    last_id: str = ""
    last_file: str = ""  # the video just finished, relative to the input folder
    last_error: str = ""  # set when the video just finished failed

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def videos_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ExtractSummary:
    """What one run of :func:`extract_folder` did."""

    found: int = 0
    skipped: int = 0
    extracted: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    frames: int = 0
    seconds: float = 0.0
    workers: int = 0
    peak_worker_rss_mb: float = 0.0
    interrupted: bool = False
    ray: bool = False  # the videos ran as Ray tasks

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class ExtractInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`extract_folder`; everything finished before it is in the cache."""

    def __init__(self, summary: ExtractSummary):
        super().__init__("extraction interrupted")
        self.summary = summary


@dataclass(frozen=True)
class _Job:
    path: str
    rel_path: str
    sample_id: str
    options: ExtractOptions
    source_size: int  # taken before extraction, so a file changed meanwhile is redone next run
    source_mtime: float


@dataclass
class _Result:
    job: _Job
    payload: bytes = b""
    n_frames: int = 0
    extra: dict = field(default_factory=dict)
    error: str = ""
    peak_rss_mb: float = 0.0


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    # Ctrl-C is the parent's to handle: it stops the workers itself, without tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from islr.extract.holistic import quiet_native_stderr

    with quiet_native_stderr():
        import mediapipe  # noqa: F401  (load it once per worker, while other work goes on)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _run_job(job: _Job) -> _Result:
    """Worker side: extract one video; every failure becomes an error string, never a crash."""
    from islr.extract.holistic import extract_video
    from islr.landmarks import sequence_to_bytes

    try:
        seq = extract_video(
            job.path,
            layout=job.options.layout,
            frame_stride=job.options.frame_stride,
            max_side=job.options.max_side,
        )
    except VideoError as e:
        return _Result(job, error=_without_path(str(e), job.path), peak_rss_mb=_peak_rss_mb())
    except Exception as e:  # an unexpected library error must not stop the batch either
        return _Result(job, error=f"{type(e).__name__}: {e}", peak_rss_mb=_peak_rss_mb())
    seq.source = job.rel_path
    label, label_raw, category = label_from_path(job.rel_path)
    if category:
        seq.extra["category"] = category
    return _Result(
        job,
        payload=sequence_to_bytes(seq),
        n_frames=seq.n_frames,
        extra=dict(seq.extra),
        peak_rss_mb=_peak_rss_mb(),
    )


def _without_path(message: str, path: str) -> str:
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _is_current(entry: ManifestEntry, video: VideoFile, options: ExtractOptions) -> bool:
    try:
        stat = video.path.stat()
    except OSError:
        return False
    return (
        entry.source == video.rel_path
        and entry.source_size == stat.st_size
        and entry.source_mtime == stat.st_mtime
        and entry.layout == options.layout
        and entry.extra.get("frame_stride", 1) == options.frame_stride
        and entry.extra.get("max_side") == options.max_side
    )


@contextmanager
def _sigint_ignored():
    """Ignore Ctrl-C while worker processes start, so they inherit SIG_IGN from birth."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing

    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
    )


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Terminate the workers now (Ctrl-C must not wait for videos in flight)."""
    # ProcessPoolExecutor has no public terminate before Python 3.14.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def extract_folder(
    video_dir: str | Path,
    cache_dir: str | Path,
    layout: str = "holistic136",
    frame_stride: int = 1,
    max_side: int | None = None,
    workers: int | None = None,
    limit: int | None = None,
    on_progress: Callable[[ExtractProgress], None] | None = None,
    ray_address: str | None = None,
) -> ExtractSummary:
    """Extract landmarks of every video under ``video_dir`` into the cache at ``cache_dir``.

    ``video_dir`` may also be a single video. ``limit`` keeps the first N videos (sorted by
    path). Videos already in the cache unchanged are skipped; failures go to ``failures.csv``
    and into the returned summary. Raises :class:`VideoError` if there is no video at all, and
    :class:`ExtractInterrupted` (a ``KeyboardInterrupt``) on Ctrl-C after stopping the workers.

    ``ray_address`` (``local``, ``auto``, ``ray://HOST:PORT``) runs the videos as Ray tasks
    instead of local processes (see :mod:`islr.extract.ray_executor`); this process still writes
    the cache, so everything else is the same. ``workers`` then sizes a ``local`` Ray instance.
    Raises :class:`ClusterError` if Ray is missing or unreachable.
    """
    # checked here: in the workers a missing MediaPipe would fail every video one by one
    require_video("extracting landmarks from videos", load=False)
    options = ExtractOptions(layout, frame_stride, max_side)
    if workers is not None and workers < 1:
        raise VideoError(f"--workers must be at least 1, got {workers}")
    if limit is not None and limit < 1:
        raise VideoError(f"--limit must be at least 1, got {limit}")
    ray_executor = None
    if ray_address is not None:
        from islr.extract.ray_executor import RayExecutor

        ray_executor = RayExecutor(ray_address, workers=workers)  # fails now if Ray is missing
    started = time.perf_counter()
    listing = find_videos(video_dir)
    videos = listing.videos[:limit] if limit else listing.videos
    if not videos:
        where = (
            f"{listing.root} (unreadable: {listing.unreadable[0][1]})"
            if listing.unreadable
            else video_dir
        )
        raise VideoError(
            f"no videos found in {where}; expected files ending in "
            f"{', '.join(VIDEO_EXTENSIONS)} (any case)"
        )
    cache = LandmarkCache(cache_dir)
    summary = ExtractSummary(found=len(videos), ray=ray_executor is not None)
    with cache.writer() as writer:
        writer.clear_failures(listing.readable_dirs)
        for folder, reason in listing.unreadable:
            _record_failure(writer, summary, folder, f"cannot read folder: {reason}")
        existing = {e.id: e for e in cache.entries()} if cache.exists() else {}
        jobs: list[_Job] = []
        seen_ids: dict[str, str] = {}
        for video in videos:
            sid = video.sample_id
            if sid in seen_ids:
                reason = f"same sample id as {seen_ids[sid]}; rename one of them"
                _record_failure(writer, summary, video.rel_path, reason)
                continue
            seen_ids[sid] = video.rel_path
            entry = existing.get(sid)
            if entry is not None and _is_current(entry, video, options):
                summary.skipped += 1
                continue
            try:
                stat = video.path.stat()
            except OSError as e:
                reason = f"cannot read file: {e.strerror or e}"
                _record_failure(writer, summary, video.rel_path, reason)
                continue
            # An absolute path: a Ray worker on another node (same shared mount) may start elsewhere.
            path = str(video.path.absolute())
            jobs.append(_Job(path, video.rel_path, sid, options, stat.st_size, stat.st_mtime))
        executor: JobExecutor = ray_executor or LocalExecutor(
            max(1, min(workers or default_workers(), len(jobs)))
        )
        progress = ExtractProgress(total=len(jobs), skipped=summary.skipped)
        if on_progress:
            on_progress(progress)
        if jobs:
            try:
                _run_jobs(
                    executor, jobs, listing.root, writer, summary, progress, on_progress, started
                )
            except KeyboardInterrupt:
                summary.interrupted = True
                summary.workers = executor.workers
                summary.seconds = time.perf_counter() - started
                raise ExtractInterrupted(summary) from None
            summary.workers = executor.workers
    summary.seconds = time.perf_counter() - started
    return summary


def _run_jobs(
    executor: JobExecutor,
    jobs: list[_Job],
    root: Path,
    writer,
    summary: ExtractSummary,
    progress: ExtractProgress,
    on_progress: Callable[[ExtractProgress], None] | None,
    started: float,
) -> None:
    """Store every result the executor hands back (this process is the only cache writer)."""
    with closing(executor.run(jobs)) as results:
        for result in results:
            job = result.job
            _store(result, root, writer, summary)
            progress.done += 1
            progress.frames = summary.frames
            progress.failed = len(summary.failures)
            progress.last_id = job.sample_id
            progress.last_file = job.rel_path
            progress.last_error = result.error
            progress.seconds = time.perf_counter() - started
            if on_progress:
                on_progress(progress)


class JobExecutor(Protocol):
    """Where the videos are extracted: this machine's processes, or a Ray cluster.

    ``run`` yields one :class:`_Result` per job, in any order, and keeps a bounded number of jobs
    in flight; a job whose worker process died is retried, then returned as a failed result.
    Closing the generator (Ctrl-C, an error in the writer) stops the work in flight.
    ``workers`` is how many videos run at once (known once ``run`` has started).
    """

    workers: int

    def run(self, jobs: list[_Job]) -> Iterator[_Result]: ...


class LocalExecutor:
    """``spawn`` worker processes on this machine (a fresh pool after a worker crash)."""

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, jobs: list[_Job]) -> Iterator[_Result]:
        queue = list(reversed(jobs))  # pop() from the end keeps the sorted order
        crashes: dict[str, int] = {}
        in_flight: dict[Future, _Job] = {}
        max_in_flight = 2 * self.workers  # keeps workers busy, not every result in memory
        pool = None
        try:
            while queue or in_flight:
                if pool is None:
                    with _sigint_ignored():
                        pool = _new_pool(self.workers)
                        while queue and len(in_flight) < max_in_flight:
                            job = queue.pop()
                            in_flight[pool.submit(_run_job, job)] = job
                while queue and len(in_flight) < max_in_flight:
                    job = queue.pop()
                    in_flight[pool.submit(_run_job, job)] = job
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    job = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        crashes[job.rel_path] = crashes.get(job.rel_path, 0) + 1
                        if crashes[job.rel_path] < MAX_CRASHES_PER_VIDEO:
                            queue.append(job)
                            continue
                        result = _Result(job, error=WORKER_CRASHED)
                    yield result
                if broken:
                    # The pool is unusable: requeue what was in flight, start a fresh one.
                    for future, job in in_flight.items():
                        future.cancel()
                        queue.append(job)
                    in_flight.clear()
                    _stop_pool(pool)
                    pool = None
        except BaseException:
            if pool is not None:
                _stop_pool(pool)
                pool = None
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True)


def _record_failure(writer, summary: ExtractSummary, file: str, reason: str) -> None:
    """One failures.csv row per file (an older reason is replaced) and in the summary."""
    writer.clear_failures([file])
    writer.record_failure(file, reason)
    summary.failures.append((file, reason))


def _store(result: _Result, root: Path, writer, summary: ExtractSummary) -> None:
    job = result.job
    summary.peak_worker_rss_mb = max(summary.peak_worker_rss_mb, result.peak_rss_mb)
    if result.error:
        _record_failure(writer, summary, job.rel_path, result.error)
        return
    label, label_raw, category = label_from_path(job.rel_path)
    extra = {
        k: result.extra[k] for k in ("category", "frame_stride", "max_side") if k in result.extra
    }
    entry = ManifestEntry(
        id=job.sample_id,
        label=label,
        label_raw=label_raw,
        n_frames=result.n_frames,
        layout=job.options.layout,
        source=job.rel_path,
        source_size=job.source_size,
        source_mtime=job.source_mtime,
        extra=extra,
    )
    writer.add_bytes(result.payload, entry)
    writer.clear_failures([job.rel_path])
    summary.extracted += 1
    summary.frames += result.n_frames
