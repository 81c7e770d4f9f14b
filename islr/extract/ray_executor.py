"""Extraction as Ray tasks: ``islr extract --ray ADDRESS``.

One Ray task per video runs the very same worker function as the local runner
(:func:`islr.extract.runner._run_job`) in a Ray worker process, which builds its own MediaPipe
graph per video; only the serialised landmarks come back. Videos travel by path: VIDEO_DIR must be
mounted at the same path on every node (NFS, EFS, Filestore, a FUSE mount of an object store).
This process stays the cache's only writer, so the manifest, the skip rule, ``failures.csv`` and
the exit codes are the local runner's.

- A task whose worker process dies (killed, out of memory, node lost) is retried by Ray
  (``max_retries``); after :data:`MAX_CRASHES_PER_VIDEO` attempts the video is recorded as failed.
- Back-pressure: at most ``2 x`` the cluster's CPUs tasks are submitted at a time (re-read every
  few seconds, so an autoscaling cluster that grows gets more), and each result is fetched and
  written as soon as it is ready: a 100k-video folder never has more than that in flight.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from islr.extract.runner import MAX_CRASHES_PER_VIDEO, WORKER_CRASHED, _Job, _Result, _run_job
from islr.ray_cluster import cancel, check_address, cluster_cpus, import_ray, ray_session

IN_FLIGHT_PER_CPU = 2  # enough to keep every CPU busy while results are written
RESIZE_EVERY_S = 10.0  # how often the cluster's size is read again (autoscaling)


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

    def run(self, jobs: list[_Job]) -> Iterator[_Result]:
        callers_session = import_ray().is_initialized()  # it outlives us: cancel on error
        with ray_session(self.address, num_cpus=self.local_cpus) as ray:
            from ray.exceptions import RayError, RayTaskError

            task = ray.remote(_run_job).options(
                num_cpus=self.cpus_per_task,
                max_retries=MAX_CRASHES_PER_VIDEO - 1,  # a lost worker only; errors are results
                retry_exceptions=False,
                name="islr-extract",
            )
            queue = list(reversed(jobs))  # pop() from the end keeps the sorted order
            in_flight: dict = {}  # ObjectRef -> _Job
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
                        except RayTaskError as e:  # _run_job returns errors; this is a bug
                            result = _Result(job, error=" ".join(str(e.cause).split()))
                        except RayError as e:  # the worker or its node died, retries used up
                            result = _Result(job, error=f"{WORKER_CRASHED} ({type(e).__name__})")
                        yield result
            finally:
                if in_flight and callers_session:  # Ctrl-C or an error
                    cancel(ray, list(in_flight))
