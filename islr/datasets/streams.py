"""Continuous signing synthesised from isolated clips, with a B/I/O tag per frame.

A *stream* is clips played one after another, as a signer signs several words in a row, with
what happens between words in real use: nothing (back to back, each clip keeping its own natural
start and end), a pause with no hands in view, hands resting visibly, hands leaving the frame,
and movement that is not a sign (scratching the face, adjusting clothes, waving), each clip at
its own speed, the whole stream seen by another camera or body (the spatial augmentations of
:mod:`islr.features.augment`). Deterministic for a seed.

**Where a sign is.** An isolated clip starts and ends with the hands at rest (INCLUDE: hands
down, often still detected). The sign is the clip's *raised span*: from the first to the last
frame where a wrist is raised above its resting height (the median height over the clip's first
and last frames) by more than ``raise_fraction`` x the shoulder width. The clip's rest frames
before and after are *outside* (``O``), like the gaps; the span's first ``begin_seconds`` are
``B`` (a new sign begins: the tag that separates two signs with no rest between them), the rest
of the span ``I``. A clip with no raised frame (a sign made low) is one sign from end to end.

Non-sign movement is built from landmark motion, not from sign clips: one hand of the last frame
travels rigidly (with its pose wrist and elbow) to the face, the chest or beside the head,
jitters or waves there, and comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from islr.features.augment import Compose
from islr.landmarks import Layout, get_layout
from islr.landmarks.layouts import HAND_WRIST, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER

TAG_O, TAG_B, TAG_I = 0, 1, 2
TAGS = ("O", "B", "I")
POSE_NOSE, POSE_LEFT_ELBOW, POSE_RIGHT_ELBOW, POSE_LEFT_WRIST, POSE_RIGHT_WRIST = 0, 13, 14, 15, 16
GAP_KINDS = ("none", "no_hands", "rest", "leave", "movement")
MOVEMENT_KINDS = ("scratch", "adjust", "wave")


@dataclass
class StreamRecipe:
    """How streams are put together; times in seconds of the stream (at ``fps``)."""

    fps: float = 30.0  # the clips' frames are played at this rate
    signs: tuple[int, int] = (2, 6)  # signs per stream, inclusive range
    # what comes between two signs: "none" (back to back) and the others of GAP_KINDS, weights
    gap_weights: tuple[float, ...] = (0.4, 0.15, 0.15, 0.1, 0.2)
    gap_seconds: tuple[float, float] = (0.2, 1.2)  # length of a pause, rest or hands away
    movement_seconds: tuple[float, float] = (0.8, 2.0)  # length of a non-sign movement
    speed_range: tuple[float, float] = (0.7, 1.4)  # each clip's playback speed
    raise_fraction: float = 0.3  # wrist raise over rest (x shoulder width) that makes a sign
    begin_seconds: float = 0.1  # a sign's first frames tagged B
    lead_seconds: tuple[float, float] = (0.0, 0.6)  # rest before the first and after the last
    augment: bool = True  # another body/camera per stream (mirror, rotate, scale, shear, noise)


@dataclass
class SignTruth:
    """One sign of a stream: its label and its frames ``start..end`` (inclusive)."""

    label: str
    start: int
    end: int
    clip_start: int  # the clip's own first and last frame in the stream
    clip_end: int


@dataclass
class Stream:
    """A synthesised stream: frames ``(T, N, C)`` (NaN = not detected), tags ``(T,)``, signs."""

    frames: np.ndarray
    tags: np.ndarray
    signs: list[SignTruth]
    fps: float


def _shoulders(layout: Layout) -> tuple[int, int] | None:
    if not layout.has("pose"):
        return None
    return layout.index("pose", POSE_LEFT_SHOULDER), layout.index("pose", POSE_RIGHT_SHOULDER)


def wrist_rows(layout: Layout) -> list[int]:
    """Rows of the wrists: the pose's when the layout has a pose, else the hands'."""
    if layout.has("pose"):
        return [layout.index("pose", POSE_LEFT_WRIST), layout.index("pose", POSE_RIGHT_WRIST)]
    return [layout.index(h, HAND_WRIST) for h in ("left_hand", "right_hand") if layout.has(h)]


def shoulder_width(data: np.ndarray, layout: Layout) -> float:
    """Median shoulder width of a clip (image-width units); 0.25 without shoulders."""
    rows = _shoulders(layout)
    if rows is None:
        return 0.25
    width = np.linalg.norm(data[:, rows[0], :2] - data[:, rows[1], :2], axis=-1)
    width = width[np.isfinite(width)]
    return float(np.median(width)) if width.size and np.median(width) > 0 else 0.25


def sign_span(
    data: np.ndarray, layout: str | Layout, raise_fraction: float = 0.3
) -> tuple[int, int]:
    """The frames ``(start, end)`` (inclusive) of the sign in an isolated clip (module doc)."""
    layout = get_layout(layout)
    n = data.shape[0]
    edge = max(1, min(3, n // 4))
    raised = np.zeros(n, dtype=bool)
    for row in wrist_rows(layout):
        y = data[:, row, 1]
        ends = np.concatenate([y[:edge], y[-edge:]])
        ends = ends[np.isfinite(ends)]
        if not ends.size:
            continue
        rest = float(np.median(ends))
        raised |= np.nan_to_num(rest - y, nan=0.0) > raise_fraction * shoulder_width(data, layout)
    hits = np.flatnonzero(raised)
    if hits.size == 0:
        return 0, n - 1
    return int(hits[0]), int(hits[-1])


def clip_tags(n: int, span: tuple[int, int], begin_frames: int) -> np.ndarray:
    """B/I/O tags of one clip of ``n`` frames whose sign is ``span``."""
    tags = np.full(n, TAG_O, dtype=np.int64)
    start, end = span
    tags[start : end + 1] = TAG_I
    tags[start : min(end + 1, start + max(1, begin_frames))] = TAG_B
    return tags


def change_speed(data: np.ndarray, speed: float) -> np.ndarray:
    """The clip played ``speed`` times faster (nearest frames)."""
    n = data.shape[0]
    count = max(2, int(round(n / speed)))
    idx = np.minimum(np.round(np.arange(count) * (n / count)).astype(np.int64), n - 1)
    return data[idx]


def hold(frame: np.ndarray, n: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """``n`` copies of a frame with a small tremor (a body at rest is never perfectly still)."""
    out = np.repeat(frame[None], n, axis=0).astype(np.float32)
    out[..., :2] += rng.normal(0, jitter, size=out[..., :2].shape).astype(np.float32)
    return out


def without_hands(frames: np.ndarray, layout: Layout) -> np.ndarray:
    out = frames.copy()
    for hand in ("left_hand", "right_hand"):
        if layout.has(hand):
            out[:, layout.slice(hand)] = np.nan
    return out


def _hand_rows(layout: Layout, side: str) -> tuple[list[int], int | None, int | None]:
    """Rows that move with the ``side`` hand: its hand points, pose wrist and pose elbow."""
    rows = list(range(*layout.slice(f"{side}_hand").indices(layout.n_points)))
    wrist = elbow = None
    if layout.has("pose"):
        wrist = layout.index("pose", POSE_LEFT_WRIST if side == "left" else POSE_RIGHT_WRIST)
        elbow = layout.index("pose", POSE_LEFT_ELBOW if side == "left" else POSE_RIGHT_ELBOW)
    return rows, wrist, elbow


def non_sign_movement(
    frame: np.ndarray,
    layout: Layout,
    n: int,
    kind: str,
    rng: np.random.Generator,
    fps: float = 30.0,
) -> np.ndarray:
    """``n`` frames of a hand moving from ``frame``'s rest somewhere and back (module doc)."""
    out = hold(frame, n, rng, 0.001)
    sides = [s for s in ("left", "right") if layout.has(f"{s}_hand")]
    sides = [s for s in sides if not np.isnan(frame[layout.slice(f"{s}_hand"), 0]).all()]
    if not sides or not layout.has("pose"):
        return out
    side = sides[int(rng.integers(len(sides)))]
    rows, wrist, elbow = _hand_rows(layout, side)
    width = shoulder_width(frame[None], layout)
    left, right = _shoulders(layout) or (0, 0)
    mid = (frame[left, :2] + frame[right, :2]) / 2
    own_shoulder = frame[left if side == "left" else right, :2]
    start = frame[wrist, :2] if not np.isnan(frame[wrist, 0]) else np.nanmean(frame[rows, :2], 0)
    nose = frame[layout.index("pose", POSE_NOSE), :2]
    if kind == "scratch":
        target = nose + rng.uniform(-0.4, 0.4, 2) * width + np.array([0, 0.1]) * width
    elif kind == "adjust":
        target = mid + np.array([rng.uniform(-0.3, 0.3), rng.uniform(0.2, 0.6)]) * width
    else:  # wave: beside the head
        target = (
            own_shoulder
            + np.array(
                [(own_shoulder[0] - mid[0]) * 0.6 / max(width, 1e-6), -rng.uniform(0.6, 1.0)]
            )
            * width
        )
    go = max(2, int(n * rng.uniform(0.2, 0.35)))
    back = go
    stay = max(1, n - go - back)
    u = np.concatenate([np.linspace(0, 1, go), np.ones(stay), np.linspace(1, 0, back)])[:n]
    u = u * u * (3 - 2 * u)  # smooth departure and arrival
    path = start[None] + u[:, None] * (target - start)[None]
    t = np.arange(n) / fps
    active = (u > 0.95)[:, None]
    if kind == "wave":
        path[:, 0] += active[:, 0] * 0.25 * width * np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t)
    else:
        wiggle = 0.06 * width * np.sin(2 * np.pi * rng.uniform(3.0, 6.0) * t)
        path += active * np.stack([wiggle, 0.5 * wiggle], axis=1)
    shift = (path - start[None]).astype(np.float32)
    out[:, rows, :2] += shift[:, None]
    if wrist is not None:
        out[:, wrist, :2] += shift
    if elbow is not None:
        out[:, elbow, :2] += 0.5 * shift
    return out


def spatial_augmentation() -> Compose:
    """Another body and camera for a whole stream (the timing is the stream's own)."""
    return Compose.from_config(
        [
            {"name": "mirror", "p": 0.5},
            {"name": "rotate", "p": 0.5, "max_degrees": 12.0},
            {"name": "scale", "p": 0.5, "scale_range": (0.75, 1.3), "aspect_jitter": 0.1},
            {"name": "shear_shift", "p": 0.4, "shear": 0.12, "shift": 0.08},
            {"name": "noise", "p": 0.3, "std": 0.003},
            {"name": "drop_hands", "p": 0.3, "fraction": 0.15},
        ]
    )


def _gap(
    last: np.ndarray, layout: Layout, kind: str, recipe: StreamRecipe, rng: np.random.Generator
) -> np.ndarray:
    """Frames between two signs, starting from the last frame shown."""
    if kind == "movement":
        n = int(round(rng.uniform(*recipe.movement_seconds) * recipe.fps))
        motion = MOVEMENT_KINDS[int(rng.integers(len(MOVEMENT_KINDS)))]
        return non_sign_movement(last, layout, n, motion, rng, recipe.fps)
    n = max(1, int(round(rng.uniform(*recipe.gap_seconds) * recipe.fps)))
    frames = hold(last, n, rng, 0.0015)
    if kind == "no_hands":
        return without_hands(frames, layout)
    if kind == "leave":  # hands drop out of view: a few frames of hands, then none
        return (
            without_hands(frames, layout)
            if n < 4
            else np.concatenate([frames[: n // 4], without_hands(frames[n // 4 :], layout)])
        )
    return frames


def build_stream(
    clips: list[tuple[str, np.ndarray]],
    layout: str | Layout,
    rng: np.random.Generator,
    recipe: StreamRecipe | None = None,
    gaps: list[str] | None = None,
) -> Stream:
    """One stream of ``clips`` (label, ``(T, N, C)`` array in ``layout``), in order.

    ``gaps``: what comes between consecutive clips (``len(clips) - 1`` names of
    :data:`GAP_KINDS`); drawn from ``recipe.gap_weights`` when None.
    """
    recipe = recipe or StreamRecipe()
    layout = get_layout(layout)
    if not clips:
        raise ValueError("a stream needs at least one clip")
    if gaps is None:
        weights = np.asarray(recipe.gap_weights, dtype=float)
        picks = rng.choice(len(GAP_KINDS), size=len(clips) - 1, p=weights / weights.sum())
        gaps = [GAP_KINDS[i] for i in picks]
    if len(gaps) != len(clips) - 1 or any(g not in GAP_KINDS for g in gaps):
        raise ValueError(f"gaps must be {len(clips) - 1} of {GAP_KINDS}, got {gaps}")
    begin = max(1, int(round(recipe.begin_seconds * recipe.fps)))
    parts: list[np.ndarray] = []
    tags: list[np.ndarray] = []
    signs: list[SignTruth] = []
    offset = 0

    def add(frames: np.ndarray, frame_tags: np.ndarray) -> None:
        nonlocal offset
        parts.append(frames.astype(np.float32, copy=False))
        tags.append(frame_tags)
        offset += len(frames)

    for i, (label, data) in enumerate(clips):
        lo, hi = recipe.speed_range
        data = change_speed(data, float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
        if i == 0:
            lead = int(round(rng.uniform(*recipe.lead_seconds) * recipe.fps))
            if lead:
                add(hold(data[0], lead, rng, 0.0015), np.full(lead, TAG_O))
        span = sign_span(data, layout, recipe.raise_fraction)
        signs.append(
            SignTruth(label, offset + span[0], offset + span[1], offset, offset + len(data) - 1)
        )
        add(data, clip_tags(len(data), span, begin))
        if i < len(clips) - 1 and gaps[i] != "none":
            gap = _gap(data[-1], layout, gaps[i], recipe, rng)
            add(gap, np.full(len(gap), TAG_O))
    tail = int(round(rng.uniform(*recipe.lead_seconds) * recipe.fps))
    if tail:
        add(hold(parts[-1][-1], tail, rng, 0.0015), np.full(tail, TAG_O))
    frames = np.concatenate(parts)
    if recipe.augment:
        frames = spatial_augmentation().apply(frames, layout, rng)
    return Stream(frames, np.concatenate(tags).astype(np.int64), signs, recipe.fps)


def random_streams(
    clips: list[tuple[str, np.ndarray]],
    layout: str | Layout,
    n_streams: int,
    seed: int,
    recipe: StreamRecipe | None = None,
) -> list[Stream]:
    """``n_streams`` streams of randomly drawn ``clips`` (each stream's signs all different)."""
    recipe = recipe or StreamRecipe()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_streams):
        k = int(rng.integers(recipe.signs[0], recipe.signs[1] + 1))
        picks = rng.choice(len(clips), size=min(k, len(clips)), replace=False)
        out.append(build_stream([clips[i] for i in picks], layout, rng, recipe))
    return out
