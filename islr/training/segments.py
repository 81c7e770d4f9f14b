"""Stream segments as training samples: what the classifier is given in continuous signing.

In a stream the classifier never sees a clip with its own rests. It gets the frames that the
stream decoder (:class:`islr.streaming.TagDecoder`) cuts around a tagged sign: up to
``context_seconds`` before and after it, none where the next sign follows at once, at another
speed and seen by another body (:mod:`islr.datasets.streams`). A classifier trained on clips
alone is less sure of such a segment than of its clip, so a known sign falls under the unknown
threshold more often. With ``augment.p_stream_segment`` a training clip is replaced, with that
probability, by a segment of its own sign cut from streams of training clips. The streams' true
tags are used with their boundaries moved by a few frames, as a segmenter's are: no segmenter
model is needed, and the classifier does not learn one segmenter's mistakes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from islr.datasets.streams import TAG_B, TAG_I, TAG_O, Stream, StreamRecipe, random_streams
from islr.modelfile import DEFAULT_DECODER
from islr.streaming import StreamConfig, TagDecoder

SIGNS_PER_STREAM = 4  # the recipe's streams hold 2-6 signs
BEGIN_FRAMES = 3  # a tagged sign's first frames are B (StreamRecipe.begin_seconds at 30 fps)


def jittered_tags(stream: Stream, rng: np.random.Generator, jitter: tuple[int, int] = (4, 6)):
    """One-hot O/B/I rows ``(T, 3)`` of the stream's signs, each sign's start moved by up to
    ``jitter[0]`` frames either way and its end by up to ``jitter[1]`` frames (earlier) or half
    that (later): a segmenter tends to end a sign before its hands are down."""
    n = len(stream.frames)
    probs = np.zeros((n, 3), dtype=np.float32)
    probs[:, TAG_O] = 1.0
    for sign in stream.signs:
        start = int(np.clip(sign.start + rng.integers(-jitter[0], jitter[0] + 1), 0, n - 1))
        end = sign.end + int(rng.integers(-jitter[1], jitter[1] // 2 + 1))
        end = int(np.clip(end, start + 1, n - 1))
        probs[start : end + 1] = np.eye(3, dtype=np.float32)[TAG_I]
        probs[start : start + BEGIN_FRAMES] = np.eye(3, dtype=np.float32)[TAG_B]
    return probs


def cut_segments(stream: Stream, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """``(label, frames)`` of each segment the stream decoder cuts from the stream (jittered
    true tags); a segment is its sign's when that sign covers at least half of it."""
    decoder = TagDecoder(replace(StreamConfig(**DEFAULT_DECODER), partial_every=10**9))
    probs = jittered_tags(stream, rng)
    actions = [
        decoder.push(frame, tags, i / stream.fps)
        for i, (frame, tags) in enumerate(zip(stream.frames, probs, strict=True))
    ]
    actions.append(decoder.flush())
    out = []
    for action in actions:
        if action is None or action.kind != "final":
            continue
        lo, hi = action.start * stream.fps, action.end * stream.fps
        cover, label = max((min(hi, s.end) - max(lo, s.start), s.label) for s in stream.signs)
        if cover >= 0.5 * (hi - lo):
            out.append((label, np.stack(action.frames)))
    return out


def stream_segment_pool(
    arrays: list[np.ndarray],
    targets: np.ndarray,
    n_classes: int,
    layout: str,
    per_clip: float,
    seed: int,
    recipe: StreamRecipe | None = None,
) -> list[list[np.ndarray]]:
    """Segments of each class (index) cut from streams of the training clips, about
    ``per_clip`` per clip; deterministic for a seed."""
    clips = [(str(int(t)), a) for a, t in zip(arrays, targets, strict=True)]
    n_streams = max(1, int(round(per_clip * len(clips) / SIGNS_PER_STREAM)))
    rng = np.random.default_rng([seed, 7])
    pool: list[list[np.ndarray]] = [[] for _ in range(n_classes)]
    for stream in random_streams(clips, layout, n_streams, seed, recipe):
        for label, frames in cut_segments(stream, rng):
            pool[int(label)].append(frames.astype(np.float32, copy=False))
    return pool


def swap_in_segments(
    arrays: list[np.ndarray],
    targets: np.ndarray,
    pool: list[list[np.ndarray]],
    p: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Each array replaced, with probability ``p``, by a random segment of its class."""
    out = []
    for array, target in zip(arrays, targets, strict=True):
        segments = pool[int(target)]
        if segments and rng.random() < p:
            array = segments[int(rng.integers(len(segments)))]
        out.append(array)
    return out
