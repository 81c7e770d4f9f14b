"""Where videos are extracted: the job types, the worker function, and both executors.

:class:`LocalExecutor` runs :func:`run_job` in ``spawn`` worker processes on this machine;
:class:`RayExecutor` runs the very same function as Ray tasks (``islr extract --ray ADDRESS``).
Either yields one :class:`JobResult` per :class:`ExtractJob`; the runner
(:mod:`islr.extract.runner`) stays the cache's only writer.

Ray: one task per video, in a Ray worker process, which builds its own MediaPipe graph per
video; only the serialised landmarks come back. Videos travel by path: VIDEO_DIR must be mounted
at the same path on every node (NFS, EFS, Filestore, a FUSE mount of an object store).

- A task whose worker process dies (killed, out of memory, node lost) is retried by Ray
  (``max_retries``); after :data:`MAX_CRASHES_PER_VIDEO` attempts the video is recorded as failed.
- Back-pressure: at most ``2 x`` the cluster's CPUs tasks are submitted at a time (re-read every
  few seconds, so an autoscaling cluster that grows gets more), and each result is fetched and
  written as soon as it is ready: a 100k-video folder never has more than that in flight.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from islr.errors import VideoError
from islr.extract.holistic import ExtractOptions, extract_video, quiet_native_stderr
from islr.extract.paths import label_from_path
from islr.landmarks import sequence_to_bytes
from islr.ray_cluster import cancel, check_address, cluster_cpus, import_ray, ray_session

# A job whose worker died (MediaPipe or OpenCV aborting) this many times is recorded as failed.
MAX_CRASHES_PER_VIDEO = 2
WORKER_CRASHED = "the worker process crashed on this video"

IN_FLIGHT_PER_CPU = 2  # enough to keep every CPU busy while results are written
RESIZE_EVERY_S = 10.0  # how often the cluster's size is read again (autoscaling)


@dataclass(frozen=True)
class ExtractJob:
    """One video to extract and where its landmarks go."""

    path: str
    rel_path: str
    sample_id: str
    options: ExtractOptions
    source_size: int  # taken before extraction, so a file changed meanwhile is redone next run
    source_mtime: float


@dataclass
class JobResult:
    """What a worker hands back for a job: the landmarks' bytes, or an error."""

    job: ExtractJob
    payload: bytes = b""
    n_frames: int = 0
    extra: dict = field(default_factory=dict)
    error: str = ""
    peak_rss_mb: float = 0.0


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies, even by ``kill -9`` (Linux:
    ``PR_SET_PDEATHSIG``); elsewhere a no-op. Exits now if the parent is already gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the call above
        os._exit(1)


def _init_worker(parent_pid: int) -> None:
    # Workers must not outlive the batch: a killed `islr extract` would leave them running.
    die_with_parent(parent_pid)
    # Ctrl-C is the parent's to handle: it stops the workers itself, without tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with quiet_native_stderr():
        import mediapipe  # noqa: F401  (load it once per worker, while other work goes on)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_job(job: ExtractJob) -> JobResult:
    """Worker side: extract one video; every failure becomes an error string, never a crash."""
    try:
        seq = extract_video(
            job.path,
            layout=job.options.layout,
            frame_stride=job.options.frame_stride,
            max_side=job.options.max_side,
        )
    except VideoError as e:
        return JobResult(job, error=_without_path(str(e), job.path), peak_rss_mb=_peak_rss_mb())
    except Exception as e:  # an unexpected library error must not stop the batch either
        return JobResult(job, error=f"{type(e).__name__}: {e}", peak_rss_mb=_peak_rss_mb())
    seq.source = job.rel_path
    label, label_raw, category = label_from_path(job.rel_path)
    if category:
        seq.extra["category"] = category
    return JobResult(
        job,
        payload=sequence_to_bytes(seq),
        n_frames=seq.n_frames,
        extra=dict(seq.extra),
        peak_rss_mb=_peak_rss_mb(),
    )


def _without_path(message: str, path: str) -> str:
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


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
        initargs=(os.getpid(),),
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


class JobExecutor(Protocol):
    """Where the videos are extracted: this machine's processes, or a Ray cluster.

    ``run`` yields one :class:`JobResult` per job, in any order, and keeps a bounded number of jobs
    in flight; a job whose worker process died is retried, then returned as a failed result.
    Closing the generator (Ctrl-C, an error in the writer) stops the work in flight.
    ``workers`` is how many videos run at once (known once ``run`` has started).
    """

    workers: int

    def run(self, jobs: list[ExtractJob]) -> Iterator[JobResult]: ...


class LocalExecutor:
    """``spawn`` worker processes on this machine (a fresh pool after a worker crash)."""

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, jobs: list[ExtractJob]) -> Iterator[JobResult]:
        queue = list(reversed(jobs))  # pop() from the end keeps the sorted order
        crashes: dict[str, int] = {}
        in_flight: dict[Future, ExtractJob] = {}
        max_in_flight = 2 * self.workers  # keeps workers busy, not every result in memory
        pool = None
        try:
            while queue or in_flight:
                if pool is None:
                    with _sigint_ignored():
                        pool = _new_pool(self.workers)
                        while queue and len(in_flight) < max_in_flight:
                            job = queue.pop()
                            in_flight[pool.submit(run_job, job)] = job
                while queue and len(in_flight) < max_in_flight:
                    job = queue.pop()
                    in_flight[pool.submit(run_job, job)] = job
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
                        result = JobResult(job, error=WORKER_CRASHED)
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


class RayExecutor:
    """Runs extraction jobs as Ray tasks on the cluster at ``address`` (a :class:`JobExecutor`)."""

    def __init__(
        self,
        address: str,
        workers: int | None = None,
        cpus_per_task: float = 1.0,
        max_in_flight: int | None = None,
    ):
        import_ray()  # a missing Ray is reported before the folder is scanned
        self.address = check_address(address)
        self.local_cpus = workers  # sizes a `local` instance; a cluster has the size it has
        self.cpus_per_task = cpus_per_task
        self.max_in_flight = max_in_flight
        self.workers = 0

    def _limit(self, ray) -> int:
        self.workers = max(1, int(cluster_cpus(ray) / self.cpus_per_task))
        return self.max_in_flight or IN_FLIGHT_PER_CPU * self.workers

    def run(self, jobs: list[ExtractJob]) -> Iterator[JobResult]:
        callers_session = import_ray().is_initialized()  # it outlives us: cancel on error
        with ray_session(self.address, num_cpus=self.local_cpus) as ray:
            from ray.exceptions import RayError, RayTaskError

            task = ray.remote(run_job).options(
                num_cpus=self.cpus_per_task,
                max_retries=MAX_CRASHES_PER_VIDEO - 1,  # a lost worker only; errors are results
                retry_exceptions=False,
                name="islr-extract",
            )
            queue = list(reversed(jobs))  # pop() from the end keeps the sorted order
            in_flight: dict = {}  # ObjectRef -> ExtractJob
            limit = self._limit(ray)
            resized = time.monotonic()
            try:
                while queue or in_flight:
                    if time.monotonic() - resized > RESIZE_EVERY_S:
                        limit, resized = self._limit(ray), time.monotonic()
                    while queue and len(in_flight) < limit:
                        job = queue.pop()
                        in_flight[task.remote(job)] = job
                    ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                    for ref in ready:
                        job = in_flight.pop(ref)
                        try:
                            result = ray.get(ref)
                        except RayTaskError as e:  # run_job returns errors; this is a bug
                            result = JobResult(job, error=" ".join(str(e.cause).split()))
                        except RayError as e:  # the worker or its node died, retries used up
                            result = JobResult(job, error=f"{WORKER_CRASHED} ({type(e).__name__})")
                        yield result
            finally:
                if in_flight and callers_session:  # Ctrl-C or an error
                    cancel(ray, list(in_flight))
