"""The batch runner behind ``islr extract``: a folder of videos -> a landmark cache.

Worker processes (``spawn`` context: a forked child hangs once the parent has built a MediaPipe
graph) each extract one video at a time and send back the serialised sequence; the parent is the
cache's single writer. Where the workers run is a :class:`JobExecutor`: this machine's processes
(:class:`LocalExecutor`) or Ray tasks on a cluster (:class:`RayExecutor`), both in
:mod:`islr.extract.executors`; the rest (what to skip, what to write, what failed) is the same
code for both. A video is skipped when the cache already holds it from the same source
file (same relative path, size and mtime) with the same settings, so a rerun after a crash or a
Ctrl-C finishes the rest. A bad video is recorded in ``failures.csv`` and the batch goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from islr.errors import VideoError
from islr.extract.executors import (
    ExtractJob,
    JobExecutor,
    JobResult,
    LocalExecutor,
    RayExecutor,
)
from islr.extract.holistic import ExtractOptions, require_video
from islr.extract.paths import VIDEO_EXTENSIONS, VideoFile, find_videos, label_from_path
from islr.landmarks import LandmarkCache, ManifestEntry


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


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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
    instead of local processes (see :mod:`islr.extract.executors`); this process still writes
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
        jobs: list[ExtractJob] = []
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
            jobs.append(ExtractJob(path, video.rel_path, sid, options, stat.st_size, stat.st_mtime))
        executor: JobExecutor = ray_executor or LocalExecutor(
            max(1, min(workers or default_workers(), len(jobs)))
        )
        progress = ExtractProgress(total=len(jobs), skipped=summary.skipped)
        if on_progress:
            on_progress(progress)
        if jobs:
            try:
                run_jobs(
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


def run_jobs(
    executor: JobExecutor,
    jobs: list[ExtractJob],
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


def _record_failure(writer, summary: ExtractSummary, file: str, reason: str) -> None:
    """One failures.csv row per file (an older reason is replaced) and in the summary."""
    writer.clear_failures([file])
    writer.record_failure(file, reason)
    summary.failures.append((file, reason))


def _store(result: JobResult, root: Path, writer, summary: ExtractSummary) -> None:
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
