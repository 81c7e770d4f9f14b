"""Connecting to Ray for ``--ray ADDRESS``: the one place that imports Ray and starts or joins it.

``ADDRESS`` is ``local`` (start a Ray instance on this machine, sized to its cores, stopped at the
end), ``auto`` (join the cluster this node belongs to, e.g. started by ``ray start`` or ``ray up``),
``ray://HOST:PORT`` (Ray Client, e.g. a KubeRay head service) or ``HOST:PORT`` (a head node's GCS).
Ray is an optional dependency (``pip install 'islr[ray]'``); it is imported only here, on demand.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from islr.errors import ClusterError

INSTALL_HINT = "Ray is not installed; install the ray extra: pip install 'islr[ray]'"
_HOST_PORT = re.compile(r"^[\w.\-\[\]:]+:\d+$")


def import_ray():
    """The ``ray`` module, or :class:`ClusterError` saying which extra to install."""
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


def check_address(address: str) -> str:
    """``address`` if it is one ``--ray`` understands, else :class:`ClusterError`."""
    if address in ("local", "auto") or address.startswith("ray://") or _HOST_PORT.match(address):
        return address
    raise ClusterError(
        f"--ray {address!r}: expected 'local', 'auto', 'ray://HOST:PORT' or 'HOST:PORT'"
    )


@contextmanager
def ray_session(address: str, num_cpus: int | None = None) -> Iterator[object]:
    """Ray connected to ``address`` inside the block; a Ray instance started here is stopped after.

    ``num_cpus`` sizes a ``local`` instance (default: all cores). If Ray is already initialised in
    this process (a notebook, a test, a caller that manages Ray itself) it is used as it is and
    left running. Raises :class:`ClusterError` if Ray is missing or the cluster is unreachable.
    """
    ray = import_ray()
    check_address(address)
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict = {
        # Ray's INFO lines and the workers' native log lines (MediaPipe, TensorFlow Lite) would
        # drown the progress bar; errors come back as results, not as log lines.
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    if address == "local":
        kwargs.update(address="local", include_dashboard=False)
        if num_cpus:
            kwargs["num_cpus"] = num_cpus
    else:
        _probe(address)
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as e:
        ray.shutdown()
        where = "start a local one" if address == "local" else f"reach the Ray cluster at {address}"
        hint = "" if address == "local" else " (is it running? `ray status` on the head node says)"
        raise ClusterError(f"cannot {where}: {_one_line(e)}{hint}") from None
    try:
        yield ray
    finally:
        with suppress(Exception):  # after Ctrl-C Ray may be half gone: keep the original error
            ray.shutdown()


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a closed port: Ray itself retries an unreachable GCS for many minutes."""
    if address == "auto":
        return  # Ray finds the local node's cluster itself, and says so at once if there is none
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: {e.strerror or e} (is it running? "
            "`ray status` on the head node says; a Ray Client address looks like ray://HOST:10001)"
        ) from None


def cluster_cpus(ray) -> int:
    """CPUs the cluster has now (an autoscaling cluster may grow later)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cancel(ray, refs) -> None:
    """Stop tasks still queued or running, when Ray stays up after us (a caller's session).

    Not needed otherwise: disconnecting ends the job and Ray stops its workers, and cancelling
    while Ray goes down (Ctrl-C reaches the local Ray processes too) has crashed the driver in
    Ray 2.60 ("Tried to complete task that was not pending"). Best effort: the error that got
    us here must not be replaced.
    """
    for ref in refs:
        with suppress(Exception):
            ray.cancel(ref)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."
