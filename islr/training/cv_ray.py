"""Cross-validation folds as Ray tasks: the execution behind ``islr cv --ray ADDRESS``.

``islr cv`` builds its list of (fold, seed) jobs; this module only runs them somewhere else: one
plain Ray task per job, ``cpus_per_job`` CPUs each, results back in job order. A job whose worker
or node is lost is run again (``max_retries``); an exception raised by a job is not retried (a bug
or a bad config fails the same way twice) and is raised here after the other jobs are cancelled.

Plain tasks rather than Ray Tune: the folds x seeds grid is fixed, every job runs to the end (no
early stopping, no search algorithm, no scheduler to pick trials), and ``islr cv`` already writes
its own per-fold outputs and summary. Tune would add a second results layout, its trial
directories and its resume logic, for nothing these jobs need.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from islr.ray_cluster import cancel, import_ray, ray_session


def _call_job(fn: Callable[..., Any], kwargs: dict[str, Any], threads: int) -> Any:
    """Worker side: one job, its math libraries limited to the CPUs Ray gave the task."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the `islr` command does
    if "torch" in sys.modules:  # a worker reused from an earlier job
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return fn(**kwargs)


def run_folds_on_ray(
    jobs: Sequence[tuple[Callable[..., Any], dict[str, Any]]],
    address: str = "local",
    cpus_per_job: float = 1.0,
    max_retries: int = 1,
    on_result: Callable[[int, Any], None] | None = None,
    num_cpus: int | None = None,
) -> list[Any]:
    """Run ``fn(**kwargs)`` for every ``(fn, kwargs)`` in ``jobs`` as Ray tasks; results in order.

    ``fn`` must be importable on every node (a module-level function of an installed package)
    and ``kwargs`` picklable and small: pass paths on shared storage, not arrays. ``address``
    is ``local``, ``auto``, ``ray://HOST:PORT`` or ``HOST:PORT`` (see :mod:`islr.ray_cluster`);
    ``num_cpus`` sizes a ``local`` instance. ``on_result(index, result)`` is called as each job
    finishes (for a progress bar). Raises :class:`ClusterError` if Ray is missing or unreachable,
    and the job's own exception if a job raises.
    """
    if cpus_per_job <= 0:
        raise ValueError(f"cpus_per_job must be positive, got {cpus_per_job}")
    if not jobs:
        return []
    callers_session = import_ray().is_initialized()  # it outlives us: cancel on error
    with ray_session(address, num_cpus=num_cpus) as ray:
        from ray.exceptions import RayTaskError

        task = ray.remote(_call_job).options(
            num_cpus=cpus_per_job,
            max_retries=max_retries,
            retry_exceptions=False,
            name="islr-cv-job",
        )
        threads = max(1, int(cpus_per_job))
        refs = [task.remote(fn, kwargs, threads) for fn, kwargs in jobs]
        index_of = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        results[index_of[ref]] = ray.get(ref)
                    except RayTaskError as e:
                        cause = e.cause if isinstance(e.cause, Exception) else e
                        raise cause from None
                    if on_result:
                        on_result(index_of[ref], results[index_of[ref]])
        finally:
            if pending and callers_session:
                cancel(ray, pending)
        return results
