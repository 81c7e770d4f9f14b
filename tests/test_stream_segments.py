"""Stream segments as training samples (islr.training.segments) on synthetic signs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")  # islr.training imports it
from islr.datasets.streams import StreamRecipe, build_stream
from islr.training.segments import cut_segments, stream_segment_pool, swap_in_segments
from tests.test_segmenter import LAYOUT, synthetic_clips


def _contains(stream_frames: np.ndarray, segment: np.ndarray) -> bool:
    """Whether ``segment`` is a run of consecutive frames of the stream."""
    n = len(segment)
    return any(
        np.array_equal(stream_frames[i : i + n], segment, equal_nan=True)
        for i in range(len(stream_frames) - n + 1)
    )


def test_each_sign_of_a_stream_gives_one_segment_of_its_frames():
    clips = synthetic_clips(4, 1)
    for gap in ("none", "no_hands", "rest"):
        stream = build_stream(clips, LAYOUT, np.random.default_rng(1), StreamRecipe(), [gap] * 3)
        segments = cut_segments(stream, np.random.default_rng(2))
        assert [label for label, _ in segments] == [c[0] for c in clips], gap
        for (_, frames), sign in zip(segments, stream.signs, strict=True):
            assert _contains(stream.frames, frames)
            # the decoder's cut: about the sign's raised span (jittered), never a whole stream
            assert (
                0.5 * (sign.end - sign.start) < len(frames) < 2 * (sign.clip_end - sign.clip_start)
            )


def test_pool_has_every_class_and_is_deterministic():
    clips = synthetic_clips(5, 2)
    arrays = [a for _, a in clips]
    targets = np.arange(len(clips)) % 5  # synthetic_clips: every sign once per round
    a = stream_segment_pool(arrays, targets, 5, LAYOUT, 2.0, seed=3)
    b = stream_segment_pool(arrays, targets, 5, LAYOUT, 2.0, seed=3)
    assert all(len(segments) > 0 for segments in a)
    assert 10 <= sum(map(len, a)) <= 30  # about 2 per clip
    assert all(
        np.array_equal(x, y, equal_nan=True)
        for p, q in zip(a, b, strict=True)
        for x, y in zip(p, q, strict=True)
    )


def test_swap_keeps_the_class_and_the_probability():
    pool = [[np.full((5, 2, 2), k, np.float32)] for k in range(3)]
    arrays = [np.full((9, 2, 2), -1, np.float32) for _ in range(300)]
    targets = np.arange(300) % 3
    rng = np.random.default_rng(0)
    assert swap_in_segments(arrays, targets, pool, 0.0, rng) == arrays
    swapped = swap_in_segments(arrays, targets, pool, 0.5, rng)
    taken = [s for s in swapped if len(s) == 5]
    assert 110 < len(taken) < 190
    assert all(s[0, 0, 0] == t for s, t in zip(swapped, targets, strict=True) if len(s) == 5)
    empty = [[], *pool[1:]]  # a class with no segment keeps its clips
    assert all(
        len(s) == 9
        for s, t in zip(swap_in_segments(arrays, targets, empty, 1.0, rng), targets, strict=True)
        if t == 0
    )
