"""``islr extract --ray`` and ``run_folds_on_ray`` on a real local Ray instance (2 CPUs).

The Ray tests start Ray in this process (``ray.init(num_cpus=2)``) and stop it at the end; they
skip when Ray is not installed (``pip install 'islr[ray]'``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from islr.extract import extract_folder
from islr.landmarks import LandmarkCache
from tests.conftest import need_ray, need_torch, shared_data
from tests.test_extract_cli import interrupt_after_first_sample

ISLR = [sys.executable, "-c", "from islr.cli import main; main()"]
NO_RAY = [
    sys.executable,
    "-c",
    "import sys; sys.modules['ray'] = None\nfrom islr.cli import main; main()",
]
ENV = {**os.environ, "COLUMNS": "250"}


def _islr(*args, no_ray=False, timeout=180):
    return subprocess.run(
        [*(NO_RAY if no_ray else ISLR), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


# ---- without Ray, or with a wrong address: one line, exit 2 ------------------------------------


def test_without_ray_installed_one_line_naming_the_extra(tmp_path):
    result = _islr(
        "extract", str(tmp_path), "--out", str(tmp_path / "c"), "--ray", "local", no_ray=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "pip install 'islr[ray]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def ray_local():
    ray = need_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_unreachable_or_malformed_address_is_a_clear_error(tmp_path):
    need_ray()
    video = shared_data("videos", "sample-data-video.mp4")
    for address, message in [
        ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
        ("ray://127.0.0.1:1", "cannot reach the Ray cluster at ray://127.0.0.1:1"),
        ("nowhere", "expected 'local', 'auto'"),
    ]:
        result = _islr("extract", str(video), "--out", str(tmp_path / "c"), "--ray", address)
        assert result.returncode == 2, (address, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


# ---- extraction on Ray = extraction on local processes -----------------------------------------


@pytest.fixture(scope="module")
def videos_and_broken(tmp_path_factory):
    """The shared videos (links) in a labelled layout, plus a file that is not a video."""
    videos = shared_data("videos")
    root = tmp_path_factory.mktemp("ray_in")
    for i, source in enumerate(sorted(videos.glob("*.mp4"))):
        target = root / f"{i}. {source.stem.lower()}" / source.name
        target.parent.mkdir()
        target.symlink_to(source)
    (root / "broken.mp4").write_text("not a video\n")
    return root


@pytest.fixture(scope="module")
def local_cache(videos_and_broken, tmp_path_factory):
    cache = tmp_path_factory.mktemp("local") / "cache"
    summary = extract_folder(videos_and_broken, cache, workers=2, frame_stride=2)
    assert summary.extracted == 5 and summary.failed == 1
    return cache


def _manifest_lines(cache: Path) -> list[str]:
    return (cache / "manifest.jsonl").read_text().splitlines()


def _assert_same_as_local(local: Path, other: Path) -> None:
    a, b = LandmarkCache(local), LandmarkCache(other)
    entries_a = {e.id: e for e in a.entries()}
    entries_b = {e.id: e for e in b.entries()}
    assert entries_a == entries_b  # every manifest field (there are no timings in it)
    assert len(_manifest_lines(other)) == len(entries_b)  # nothing written twice
    for entry in entries_a.values():
        # same bytes on disk: same landmarks bit for bit, same metadata
        assert (a.root / entry.path).read_bytes() == (b.root / entry.path).read_bytes()
        np.testing.assert_array_equal(a.load(entry).data, b.load(entry).data)
    assert (a.root / "failures.csv").read_bytes() == (b.root / "failures.csv").read_bytes()


@pytest.mark.slow
def test_ray_extraction_matches_local_runner_and_rerun_skips_all(
    ray_local, videos_and_broken, local_cache, tmp_path
):
    cache = tmp_path / "cache"
    seen = []
    summary = extract_folder(
        videos_and_broken, cache, frame_stride=2, ray_address="auto", on_progress=seen.append
    )
    assert (summary.extracted, summary.failed, summary.workers, summary.ray) == (5, 1, 2, True)
    assert summary.failures == [("broken.mp4", LandmarkCache(local_cache).failures()[0][1])]
    assert seen[-1].done == 6 and seen[-1].videos_per_second > 0
    _assert_same_as_local(local_cache, cache)

    again = extract_folder(videos_and_broken, cache, frame_stride=2, ray_address="auto")
    # the broken file is tried again (it may have been fixed); every video is skipped
    assert (again.skipped, again.extracted, again.failed) == (5, 0, 1)
    _assert_same_as_local(local_cache, cache)


def _running_extract_tasks() -> list[int]:
    """Pids of Ray workers executing an extraction task now (Ray titles them ray::TASK_NAME)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::islr-extract"):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_worker_killed_mid_video_is_retried_nothing_lost_or_duplicated(
    ray_local, videos_and_broken, local_cache, tmp_path
):
    killed: list[int] = []
    stop = threading.Event()

    def kill_first_running_task() -> None:
        while not stop.is_set() and not killed:
            for pid in _running_extract_tasks():
                os.kill(pid, signal.SIGKILL)  # like the OOM killer or a lost node
                killed.append(pid)
                break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_first_running_task)
    killer.start()
    try:
        summary = extract_folder(
            videos_and_broken, tmp_path / "cache", frame_stride=2, ray_address="auto"
        )
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen running a video"
    assert (summary.extracted, summary.failed) == (5, 1)  # the killed video was done again
    _assert_same_as_local(local_cache, tmp_path / "cache")


@pytest.mark.slow
def test_cli_ray_local_starts_and_stops_its_own_instance(tmp_path):
    need_ray()
    video = shared_data("videos", "sample-data-video.mp4")
    local = _islr("extract", str(video), "--out", str(tmp_path / "local"), "--workers", "1")
    assert local.returncode == 0, local.stderr
    result = _islr(
        "extract", str(video), "--out", str(tmp_path / "ray"), "--ray", "local", "--workers", "1"
    )
    assert result.returncode == 0, result.stderr
    assert "videos/s" in result.stderr and "Traceback" not in result.stderr
    assert "workers (Ray CPUs)" in result.stdout
    a, b = LandmarkCache(tmp_path / "local"), LandmarkCache(tmp_path / "ray")
    assert a.entries() == b.entries()
    assert (a.root / "samples/sample-data-video.npz").read_bytes() == (
        b.root / "samples/sample-data-video.npz"
    ).read_bytes()
    again = _islr("extract", str(video), "--out", str(tmp_path / "ray"), "--ray", "local")
    assert again.returncode == 0 and "1 videos already in the cache" in again.stderr


@pytest.mark.slow
def test_ctrl_c_on_ray_local_exits_130_and_the_rerun_finishes_the_same_cache(
    videos_and_broken, local_cache, tmp_path
):
    need_ray()
    cache = tmp_path / "cache"
    args = ["extract", str(videos_and_broken), "--out", str(cache), "--frame-stride", "2"]
    # Ctrl-C in a terminal reaches the whole process group
    code, done, stderr = interrupt_after_first_sample(
        videos_and_broken, cache, signal.SIGINT, ("--frame-stride", "2", "--ray", "local")
    )
    assert code == 130, stderr
    assert "Traceback" not in stderr and "run the same command again" in stderr
    assert 1 <= done < 5, f"Ctrl-C came too late to test anything ({done} of 5 done)"
    again = _islr(*args, "--ray", "local")
    assert again.returncode == 1, again.stderr  # the broken file still fails
    assert f"{done} videos already in the cache" in again.stderr
    _assert_same_as_local(local_cache, cache)


# ---- cross-validation jobs -----------------------------------------------------------------------


def fold_score(fold: int, seed: int, delay: float = 0.0) -> dict:
    """A stand-in for one CV fold: picklable, deterministic, takes ``delay`` seconds."""
    time.sleep(delay)
    return {
        "fold": fold,
        "seed": seed,
        "pid": os.getpid(),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


def bad_fold(fold: int) -> None:
    raise ValueError(f"fold {fold}: no samples of class 'loud' left to train on")


@pytest.fixture
def jobs_pickled_by_value(ray_local):
    # Ray workers cannot import this test module; islr's own job functions they can.
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.slow
def test_run_folds_on_ray_returns_results_in_job_order(jobs_pickled_by_value):
    need_torch()  # islr.training imports torch
    from islr.training.cv_ray import run_folds_on_ray

    jobs = [(fold_score, {"fold": f, "seed": s, "delay": 0.1}) for f in range(3) for s in (0, 1)]
    finished = []
    results = run_folds_on_ray(jobs, address="auto", on_result=lambda i, r: finished.append(i))
    assert [(r["fold"], r["seed"]) for r in results] == [(f, s) for f in range(3) for s in (0, 1)]
    assert sorted(finished) == list(range(6))  # each reported once, as it finished
    assert os.getpid() not in {r["pid"] for r in results}  # ran in Ray workers
    assert {r["threads"] for r in results} == {"1"}  # OpenMP held to the task's 1 CPU
    assert run_folds_on_ray([], address="auto") == []


@pytest.mark.slow
def test_run_folds_on_ray_raises_the_jobs_own_error(jobs_pickled_by_value):
    need_torch()
    from islr.training.cv_ray import run_folds_on_ray

    jobs = [(fold_score, {"fold": 0, "seed": 0}), (bad_fold, {"fold": 1})]
    with pytest.raises(ValueError, match="no samples of class 'loud'"):
        run_folds_on_ray(jobs, address="auto")
