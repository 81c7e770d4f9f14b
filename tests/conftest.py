"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent;
tests that need PyTorch (the ``[train]`` extra) skip on a core install. Under ``CI=true`` a missing
tool (Chromium, ffmpeg, Node, the web assets) fails instead of skipping: CI runs every test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from islr.cli import use_sleeping_openmp_threads

use_sleeping_openmp_threads()  # as the `islr` command does, before any test imports torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TORCH_REASON = (
    'needs PyTorch, the [train] extra (pip install "islr[train]"); this is a core install'
)


def need_torch():
    """``torch``, or skip the test: PyTorch is an extra, absent from a core install."""
    return pytest.importorskip("torch", reason=TORCH_REASON)


def need_video() -> None:
    """Skip the test unless MediaPipe and OpenCV (the [video] extra) are installed."""
    reason = (
        'needs MediaPipe and OpenCV, the [video] extra (pip install "islr[video]", Python < 3.13)'
    )
    pytest.importorskip("mediapipe", reason=reason)
    pytest.importorskip("cv2", reason=reason)


@pytest.fixture
def video_extra() -> None:
    """Use in a test that runs MediaPipe: it skips where the [video] extra is not installed."""
    need_video()


def missing_tool(reason: str) -> None:
    """Skip a test whose tool is missing here, or fail it under CI=true, where it must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing tool fails the run instead of skipping)")
    pytest.skip(reason)


def need_ray():
    """``ray``, or skip the test (fail it under CI=true, whose install has the [ray] extra)."""
    try:
        import ray
    except ImportError:
        missing_tool("Ray is not installed: pip install 'islr[ray]'")
    return ray


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it ships beside the repo in CI)")
    return path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServedProcess:
    """A running `islr serve`: its base URL (ending in "/"), process and output so far."""

    url: str
    process: subprocess.Popen
    output: list[str]

    @property
    def write_token(self) -> str:
        """The write token from the startup line (with --allow-enroll)."""
        for line in self.output:
            if line.startswith("write token: "):
                return line.split(": ", 1)[1].strip()
        raise AssertionError("no 'write token:' line in the output:\n" + "".join(self.output))


@contextmanager
def islr_serve_process(
    model: Path, cache: Path, *args: str, start_timeout: float = 120
) -> Iterator[ServedProcess]:
    """`islr serve MODEL ARGS` as a subprocess on a free loopback port. On leaving, it must shut
    down cleanly on SIGTERM. Its output is read all along (a full pipe would stall it)."""
    import threading

    import httpx

    port = free_port()
    env = {**os.environ, "ISLR_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "from islr.cli import main; main()", "serve", str(model)]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--threads", "1", "--no-access-log", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(base + "healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "".join(output)
            assert time.monotonic() < deadline, f"islr serve did not start in {start_timeout} s"
            time.sleep(0.3)
        yield ServedProcess(base, proc, output)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    assert proc.returncode in (0, -15), f"islr serve exited with {proc.returncode}"


@contextmanager
def islr_serve(model: Path, cache: Path, *args: str, start_timeout: float = 120) -> Iterator[str]:
    """`islr serve MODEL ARGS` as a subprocess on a free loopback port; yields its base URL
    (ending in "/"). On leaving, it must shut down cleanly on SIGTERM."""
    with islr_serve_process(model, cache, *args, start_timeout=start_timeout) as served:
        yield served.url


LOCAL_ORIGIN = "http://127.0.0.1:8000"


def local_client(app, **kwargs):
    """A TestClient as the server's own page talks to it: Host 127.0.0.1 (other hosts are
    refused: DNS rebinding) and the app's write token on every request."""
    from fastapi.testclient import TestClient

    class LocalClient(TestClient):
        def websocket_connect(self, url: str, *args, **kw):
            # TestClient's sockets go to ws://testserver unless given a whole URL
            if url.startswith("/"):
                url = LOCAL_ORIGIN.replace("http", "ws", 1) + url
            return super().websocket_connect(url, *args, **kw)

    token = app.state.islr.write_token
    headers = {"authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return LocalClient(app, base_url=LOCAL_ORIGIN, headers=headers, **kwargs)
