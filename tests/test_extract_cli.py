"""``islr extract`` end to end, as a user runs it: real videos, real worker processes, real kills."""

from __future__ import annotations

import csv
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data

from islr.landmarks import LandmarkCache

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("video_extra")]

ISLR = [sys.executable, "-c", "from islr.cli import main; main()"]
ENV = {**os.environ, "COLUMNS": "250"}  # rich wraps at 80 columns when not on a terminal


def run_extract(video_dir, cache_dir, *args, preexec_fn=None, timeout=180):
    return subprocess.run(
        [*ISLR, "extract", str(video_dir), "--out", str(cache_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
        env=ENV,
    )


def failures_of(cache_dir) -> dict[str, str]:
    with (Path(cache_dir) / "failures.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "reason"]
    return {r[0]: r[1] for r in rows[1:]}


def _drop_file_permission_override() -> None:
    """In the child: give up root's power to read any file (CAP_DAC_OVERRIDE/READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in (1, 2):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _can_drop_root_read_override() -> bool:
    result = subprocess.run(["true"], preexec_fn=_drop_file_permission_override)
    return result.returncode == 0


def test_bad_inputs_are_recorded_and_good_videos_still_extracted(tmp_path):
    videos = shared_data("videos")
    root = tmp_path / "in"
    (root / "soup").mkdir(parents=True)
    shutil.copy(videos / "SOUP.mp4", root / "soup" / "SOUP.mp4")
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.MOV").write_text("not a video at all\n")
    football = (videos / "FOOTBALL.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(football[: len(football) // 2])
    locked = root / "locked"
    locked.mkdir()
    shutil.copy(videos / "sample-data-video.mp4", locked / "hidden.mp4")
    locked.chmod(0)

    preexec = None
    if os.geteuid() == 0:
        # chmod does not stop root; drop the capability that lets it read anyway.
        if not _can_drop_root_read_override():
            locked.chmod(0o755)
            shutil.rmtree(locked)
            pytest.skip("running as root without CAP_SETPCAP: cannot make a folder unreadable")
        preexec = _drop_file_permission_override
    try:
        cache = tmp_path / "cache"
        result = run_extract(
            root, cache, "--workers", "2", "--frame-stride", "2", preexec_fn=preexec
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    failures = failures_of(cache)
    assert set(failures) == {"empty.mp4", "notes.MOV", "cut.mp4", "locked/"}
    assert "empty file" in failures["empty.mp4"]
    assert "not a readable video" in failures["notes.MOV"]
    assert "truncated" in failures["cut.mp4"]
    assert "Permission denied" in failures["locked/"]
    for name in ["empty.mp4", "notes.MOV", "cut.mp4", "locked/"]:
        assert name in result.stderr + result.stdout  # warned and listed in the summary
    entries = LandmarkCache(cache).entries()
    assert [(e.id, e.label) for e in entries] == [("soup/SOUP", "soup")]
    seq = LandmarkCache(cache).load(entries[0])
    assert seq.n_frames == 21 and seq.source == "soup/SOUP.mp4"

    # Fix the inputs and rerun: the soup is skipped, the fixed files leave failures.csv.
    (root / "empty.mp4").unlink()
    (root / "notes.MOV").unlink()
    (root / "cut.mp4").write_bytes(football)
    again = run_extract(root, cache, "--workers", "2", "--frame-stride", "2")
    assert again.returncode == 0, again.stderr
    assert "1 videos already in the cache" in again.stderr
    ids = {e.id for e in LandmarkCache(cache).entries()}
    assert ids == {"soup/SOUP", "cut", "locked/hidden"}
    remaining = failures_of(cache)
    assert "cut.mp4" not in remaining and "locked/" not in remaining


def test_no_videos_is_a_clear_error_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    result = run_extract(tmp_path / "empty", tmp_path / "cache")
    assert result.returncode == 2
    assert "no videos found" in result.stderr and ".mp4" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_extract(tmp_path / "nope", tmp_path / "cache")
    assert missing.returncode == 2 and "no such video file or folder" in missing.stderr


# ---- interruption and resume -------------------------------------------------------------------

RESUME_ARGS = ("--workers", "2", "--frame-stride", "3")


@pytest.fixture(scope="module")
def many_videos(tmp_path_factory):
    """Eight short real videos (links to the shared ones) in a labelled folder layout."""
    videos = shared_data("videos")
    root = tmp_path_factory.mktemp("many")
    for i in range(4):
        for name, label in [("SOUP.mp4", "soup"), ("FOOTBALL.mp4", "3. football")]:
            target = root / "Signs" / label / f"take{i}.mp4"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(videos / name)
    return root


@pytest.fixture(scope="module")
def uninterrupted_cache(many_videos, tmp_path_factory):
    cache = tmp_path_factory.mktemp("full") / "cache"
    result = run_extract(many_videos, cache, *RESUME_ARGS)
    assert result.returncode == 0, result.stderr
    return cache


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after_first_sample(
    video_dir, cache, sig, args: tuple[str, ...] = RESUME_ARGS
) -> tuple[int, int, str]:
    """Start ``islr extract`` (with ``args``), send ``sig`` to its whole process group once a
    sample is saved; its exit code, the samples in the cache, its stderr."""
    process = subprocess.Popen(
        [*ISLR, "extract", str(video_dir), "--out", str(cache), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=ENV,
        # as from a terminal: Ctrl-C's default action, whatever this test process set (a child
        # that starts with SIGINT ignored never gets Python's KeyboardInterrupt handler)
        preexec_fn=_default_sigint,
    )
    manifest = cache / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.is_file() and manifest.read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    os.killpg(process.pid, sig)  # like Ctrl-C in a terminal (SIGINT) or the OOM killer (SIGKILL)
    _, stderr = process.communicate(timeout=60)
    done = len(LandmarkCache(cache).entries())
    return process.returncode, done, stderr


def _assert_same_cache(a, b):
    entries_a = {e.id: e for e in LandmarkCache(a).entries()}
    entries_b = {e.id: e for e in LandmarkCache(b).entries()}
    assert sorted(entries_a) == sorted(entries_b)
    assert len(entries_a) == 8
    for sample_id, entry in entries_a.items():
        other = entries_b[sample_id]
        assert (entry.label, entry.label_raw, entry.source) == (
            other.label,
            other.label_raw,
            other.source,
        )
        seq_a, seq_b = LandmarkCache(a).load(entry), LandmarkCache(b).load(other)
        # MediaPipe on CPU is deterministic: a resumed run gives bit-identical landmarks.
        np.testing.assert_array_equal(seq_a.data, seq_b.data)
        np.testing.assert_array_equal(seq_a.frame_indices, seq_b.frame_indices)


def test_killed_extraction_resumes_to_the_same_cache(many_videos, uninterrupted_cache, tmp_path):
    cache = tmp_path / "cache"
    code, done, _ = interrupt_after_first_sample(many_videos, cache, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert 1 <= done < 8, f"kill came too late to test anything ({done} of 8 done)"
    again = run_extract(many_videos, cache, *RESUME_ARGS)
    assert again.returncode == 0, again.stderr
    assert f"{done} videos already in the cache" in again.stderr
    _assert_same_cache(uninterrupted_cache, cache)


def test_ctrl_c_exits_130_cleanly_and_resumes(many_videos, uninterrupted_cache, tmp_path):
    cache = tmp_path / "cache"
    code, done, stderr = interrupt_after_first_sample(many_videos, cache, signal.SIGINT)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "interrupted" in stderr and "run the same command again" in stderr
    assert 1 <= done < 8
    again = run_extract(many_videos, cache, *RESUME_ARGS)
    assert again.returncode == 0, again.stderr
    _assert_same_cache(uninterrupted_cache, cache)
    # Nothing left to do: a third run skips everything.
    third = run_extract(many_videos, cache, *RESUME_ARGS)
    assert third.returncode == 0 and "8 videos already in the cache" in third.stderr


def test_single_video_file_and_limit(tmp_path):
    video = shared_data("videos", "sample-data-video.mp4")
    result = run_extract(video, tmp_path / "one", "--workers", "1")
    assert result.returncode == 0, result.stderr
    (entry,) = LandmarkCache(tmp_path / "one").entries()
    assert entry.id == "sample-data-video" and entry.label == "" and entry.n_frames == 9
    seq = LandmarkCache(tmp_path / "one").load(entry)
    assert seq.extractor.startswith("mediapipe-holistic ")
    assert seq.extra["image_width"] == 1280 and seq.fps == pytest.approx(24.0)

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for name in ["b.mp4", "a.mp4", "c.mp4"]:
        (folder / name).symlink_to(video)
    limited = run_extract(folder, tmp_path / "two", "--limit", "2", "--layout", "hands_pose75")
    assert limited.returncode == 0, limited.stderr
    entries = LandmarkCache(tmp_path / "two").entries()
    assert sorted(e.id for e in entries) == ["a", "b"]
    assert {e.layout for e in entries} == {"hands_pose75"}
