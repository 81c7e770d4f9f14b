import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import islr.landmarks.cache as cache_module
from islr.landmarks import (
    HANDS_POSE75,
    HOLISTIC136,
    CacheError,
    LandmarkCache,
    LandmarkFileError,
    LandmarkSequence,
    ManifestEntry,
    convert,
    get_layout,
    load_sequence,
    save_sequence,
)
from islr.landmarks.layouts import FACE_SIGNING_61, LayoutError


def random_sequence(t=10, layout="holistic136", seed=0) -> LandmarkSequence:
    rng = np.random.default_rng(seed)
    n = get_layout(layout).n_points
    data = rng.random((t, n, 3), dtype=np.float32)
    data[2, :21] = np.nan  # left hand missing in frame 2
    return LandmarkSequence(data, layout, fps=30.0, source="clip.mp4", extractor="test")


def test_layouts_sizes_and_order():
    assert HOLISTIC136.n_points == 136
    assert HOLISTIC136.components == ("left_hand", "right_hand", "pose", "face")
    assert HOLISTIC136.slice("pose") == slice(42, 75)
    assert len(FACE_SIGNING_61) == 61 == len(set(FACE_SIGNING_61))
    assert HANDS_POSE75.n_points == 75
    assert HANDS_POSE75.index("left_hand", 0) == 33
    with pytest.raises(LayoutError, match="unknown layout"):
        get_layout("nope")


def test_convert_between_layouts_keeps_points_and_fills_nan():
    seq = random_sequence()
    small = convert(seq.data, HOLISTIC136, HANDS_POSE75)
    np.testing.assert_array_equal(small[:, :33], seq.data[:, 42:75])
    back = convert(small, HANDS_POSE75, HOLISTIC136)
    np.testing.assert_array_equal(back[:, :75], seq.data[:, :75])
    assert np.isnan(back[:, 75:]).all()


def test_sequence_roundtrip(tmp_path):
    seq = random_sequence()
    path = save_sequence(seq, tmp_path / "a" / "b.npz")
    again = load_sequence(path)
    np.testing.assert_array_equal(again.data, seq.data)
    assert again.layout == "holistic136" and again.fps == 30.0 and again.source == "clip.mp4"
    assert not again.detected("left_hand")[2] and again.detected("left_hand")[3]
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((5, 136)), r"\(T, N, C\)"),
        (np.zeros((5, 10, 3)), "has 136 points"),
        (np.full((5, 136, 3), np.inf), "Inf"),
    ],
)
def test_sequence_rejects_bad_shapes(data, match):
    with pytest.raises(LandmarkFileError, match=match):
        LandmarkSequence(data, "holistic136")


def test_load_rejects_non_landmark_file(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_text("not a zip")
    with pytest.raises(LandmarkFileError, match="not an islr landmark file"):
        load_sequence(bad)


def test_cache_add_entries_and_last_line_wins(tmp_path):
    cache = LandmarkCache(tmp_path / "c")
    with cache.writer() as w:
        w.add(random_sequence(seed=1), ManifestEntry(id="hello/a", label="hello"))
        w.add(random_sequence(seed=2), ManifestEntry(id="bye/b", label="bye"))
        w.record_failure("broken.mp4", "cannot decode\nvideo")
    entries = cache.entries()
    assert [e.id for e in entries] == ["hello/a", "bye/b"]
    assert entries[0].path == "samples/hello/a.npz" and entries[0].n_frames == 10
    with cache.writer() as w:
        w.rewrite([*entries[:1], ManifestEntry(**{**entries[1].__dict__, "split": "val"})])
    assert cache.entries(split="val")[0].id == "bye/b"
    assert cache.failures() == [("broken.mp4", "cannot decode video")]
    loaded = cache.load_many(cache.entries())
    assert loaded[1].n_frames == 10


def test_cache_writer_batches_lines_after_files_and_keeps_one_failure_row_per_file(tmp_path):
    cache = LandmarkCache(tmp_path / "c")
    with cache.writer(batch=3) as w:
        w.record_failure("a.mp4", "first reason")
        w.record_failure("a.mp4", "second reason")
        for i in range(4):
            entry = w.add(random_sequence(seed=i), ManifestEntry(id=f"s{i}", label="x"))
            # a sample's file is on disk before its manifest line, which may wait for the batch
            assert (cache.root / entry.path).is_file()
            assert len(cache.entries()) == (3 if i >= 2 else 0)
        # files saved by threads, appended in the caller's order
        saved = [w.write_sample(random_sequence(seed=9), ManifestEntry(id=f"t{i}")) for i in (1, 0)]
        assert saved[0].n_frames == 10 and saved[0].path == "samples/t1.npz"
        w.append_entries(saved)
    assert [e.id for e in cache.entries()] == ["s0", "s1", "s2", "s3", "t1", "t0"]
    assert cache.failures() == [("a.mp4", "second reason")]


def test_cache_ignores_torn_line_and_missing_file(tmp_path):
    cache = LandmarkCache(tmp_path)
    with cache.writer() as w:
        w.add(random_sequence(), ManifestEntry(id="a", label="x"))
        w.append_entries([ManifestEntry(id="ghost", path="samples/ghost.npz")])
    with cache.manifest_path.open("a") as f:
        f.write('{"id": "torn", "pa')
    assert [e.id for e in cache.entries()] == ["a"]
    with cache.writer() as w:  # the next writer repairs the torn tail before appending
        w.add(random_sequence(), ManifestEntry(id="b", label="x"))
    assert [e.id for e in cache.entries()] == ["a", "b"]
    lines = cache.manifest_path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_a_last_line_lacking_only_its_newline_is_kept_once_by_the_next_writer(tmp_path):
    cache = LandmarkCache(tmp_path)
    with cache.writer() as w:
        w.add(random_sequence(), ManifestEntry(id="a", label="x"))
        w.add(random_sequence(), ManifestEntry(id="b", label="x"))
    cache.manifest_path.write_bytes(cache.manifest_path.read_bytes()[:-1])  # cut before "\n"
    assert [e.id for e in cache.entries()] == ["a", "b"]  # what a rerun decides to skip on
    with cache.writer() as w:
        w.add(random_sequence(), ManifestEntry(id="c", label="x"))
    lines = cache.manifest_path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]


def test_ctrl_c_right_after_a_manifest_line_is_written_does_not_write_it_twice(
    tmp_path, monkeypatch
):
    # What `islr extract` met when Ctrl-C arrived while the first line was being fsynced: the
    # line was in the file, the KeyboardInterrupt left it buffered, and the writer's closing
    # flush appended it again.
    real_fsync = os.fsync

    def fsync_then_ctrl_c(fd):
        real_fsync(fd)
        if os.readlink(f"/proc/self/fd/{fd}") == str(cache.manifest_path):  # not the sample's
            monkeypatch.setattr(os, "fsync", real_fsync)
            signal.raise_signal(signal.SIGINT)  # KeyboardInterrupt at the next bytecode

    cache = LandmarkCache(tmp_path)
    with pytest.raises(KeyboardInterrupt), cache.writer() as w:
        monkeypatch.setattr(os, "fsync", fsync_then_ctrl_c)
        w.add(random_sequence(), ManifestEntry(id="a", label="x"))
    assert [e.id for e in cache.entries()] == ["a"]
    assert len(cache.manifest_path.read_text().splitlines()) == 1


def _interrupt_at_line(n: int):
    """A trace function raising KeyboardInterrupt at the ``n``-th line run by the manifest append
    (only there: an exception injected on a ``with`` line as it exits skips ``__exit__``, which a
    real signal does not do, and would leave the writer's thread lock held)."""
    seen = 0

    def trace(frame, event, arg):
        nonlocal seen
        if frame.f_code is not cache_module.CacheWriter._flush_locked.__code__:
            return None
        if event == "line":
            seen += 1
            if seen == n:
                raise KeyboardInterrupt
        return trace

    return trace, lambda: seen


@pytest.mark.parametrize("batch", [1, 3])
def test_an_interrupt_at_any_line_of_an_append_leaves_each_sample_once(tmp_path, batch):
    """Ctrl-C may land between any two lines of a manifest append; whatever the point, once the
    writer has closed, every sample handed to it before the interrupt is in the manifest exactly
    once, in order, each line whole."""
    for n in range(1, 1000):
        root = tmp_path / f"at{n}"
        cache = LandmarkCache(root)
        trace, lines_run = _interrupt_at_line(n)
        interrupted = False
        try:
            with cache.writer(batch=batch) as w:
                w.add(random_sequence(), ManifestEntry(id="before", label="x"))
                sys.settrace(trace)
                try:
                    for i in range(batch):
                        w.add(random_sequence(seed=i), ManifestEntry(id=f"s{i}", label="x"))
                finally:
                    sys.settrace(None)
        except KeyboardInterrupt:
            interrupted = True
        text = cache.manifest_path.read_text()
        ids = [json.loads(line)["id"] for line in text.splitlines()]
        expected = ["before", *(f"s{i}" for i in range(batch))]
        # the interrupted batch is written by the closing flush; samples after it never came
        assert text.endswith("\n") and ids == expected[: len(ids)] and "s0" in ids, (n, ids)
        assert [e.id for e in cache.entries()] == ids  # and their files are on disk
        if not interrupted:
            assert ids == expected
            assert n > lines_run()  # every line of the append has been interrupted once
            break
    else:
        pytest.fail("the append never finished")


def test_cache_errors_are_clear(tmp_path):
    with pytest.raises(CacheError, match="no such cache folder"):
        LandmarkCache(tmp_path / "missing").entries()
    with pytest.raises(CacheError, match="no samples"):
        LandmarkCache(tmp_path).require_entries()


def test_cache_single_writer(tmp_path):
    cache = LandmarkCache(tmp_path)
    with cache.writer():
        code = (
            "import sys; from islr.landmarks import LandmarkCache\n"
            f"c = LandmarkCache({str(tmp_path)!r})\n"
            "try:\n    c.writer().__enter__()\nexcept Exception as e:\n    print(e); sys.exit(3)\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}
        )
    assert r.returncode == 3 and "another islr process" in r.stdout


def test_import_islr_is_light():
    code = "import sys, islr, islr.landmarks; print('torch' in sys.modules, 'mediapipe' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "False"]
