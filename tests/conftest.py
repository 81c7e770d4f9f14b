"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent;
tests that need PyTorch (the ``[train]`` extra) skip on a core install. Under ``CI=true`` a missing
tool (Chromium, ffmpeg, Node, the web assets) fails instead of skipping: CI runs every test."""

from __future__ import annotations

import os
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
