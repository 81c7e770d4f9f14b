"""Finding the signs in a live stream of landmark frames: the trackers (steps 1-2).

Pure state machines with no I/O (the web page's twins, ``SegmentTracker``, ``TagDecoder`` and
``LearnedTracker`` in ``islr/serving/static/streaming.js``, run the same algorithms with the same
settings; tests/parity checks them on the same fixtures).

Two trackers find the signs, chosen by the ``segmenter`` setting. ``"learned"``
(:class:`LearnedTracker` + :class:`TagDecoder`): the segmenter model
(:mod:`islr.models.segmenter`, shipped as ``NAME.segmenter.onnx`` beside the classifier) tags
every frame O/B/I with a few frames of lookahead, and the decoder turns the tags into signs, also
when one follows another with no rest between them. ``"heuristic"`` (:class:`SegmentTracker`,
also the fallback when no segmenter model is loaded): a sign ends only when the hands rest still
or vanish. The heuristic's algorithm, per frame at time ``t`` (seconds):

1. **Activity.** The frame is *active* when at least one hand is detected and the hands are
   moving: over the frames of the last ``still_seconds``, the bounding box of some hand's wrist
   positions has a diagonal longer than ``still_fraction`` x the shoulder width (of the latest
   frame with both shoulders; 1.0, i.e. the image width, without a pose). With less than
   ``still_seconds / 2`` of history, a frame with a hand counts as moving.
2. **Segments.** Resting, an active frame opens a segment. Every later frame is appended to it.
   The segment *closes* after ``end_rest_seconds`` without an active frame, or when it has lasted
   ``max_sign_seconds`` (a sliding cut for endless signing). On closing, trailing inactive frames
   are dropped (the sign ends at its last active frame); a segment shorter than
   ``min_sign_seconds`` is noise.
3. **Actions.** A tracker's ``push`` and ``flush`` return None or a :class:`TrackerAction`:
   ``partial`` (the open segment's frames so far), ``final`` (a closed segment's frames, start and
   end) or ``rest``; :mod:`islr.streaming.events` turns them into events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from islr.landmarks import Layout, LayoutError, get_layout
from islr.landmarks.layouts import HAND_WRIST, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER
from islr.streaming.config import StreamConfig


@dataclass(frozen=True)
class TrackerAction:
    """What a tracker asks to classify (the page's ``{kind, frames, start, end}``): ``kind`` is
    ``"partial"`` (``frames`` so far), ``"final"`` (``frames`` of a closed segment from ``start``
    to ``end`` seconds) or ``"rest"`` (no frames)."""

    kind: str
    frames: list[np.ndarray] = field(default_factory=list)
    start: float | None = None
    end: float | None = None


REST = TrackerAction("rest")


@dataclass
class FrameSummary:
    """What the activity test needs of one frame: wrist positions (x, y) and the body scale."""

    hands: tuple[tuple[float, float] | None, ...]
    scale: float | None


def _point_row(layout_name: str | Layout, component: str, index: int) -> int | None:
    layout = get_layout(layout_name)
    try:
        return layout.index(component, index)
    except LayoutError:
        return None


class FrameSummarizer:
    """Extracts the wrist and shoulder points of a layout's frames."""

    def __init__(self, layout: str | Layout):
        self.hand_rows = [_point_row(layout, c, HAND_WRIST) for c in ("left_hand", "right_hand")]
        self.shoulder_rows = (
            _point_row(layout, "pose", POSE_LEFT_SHOULDER),
            _point_row(layout, "pose", POSE_RIGHT_SHOULDER),
        )

    def __call__(self, frame: np.ndarray) -> FrameSummary:
        def xy(row: int | None) -> tuple[float, float] | None:
            if row is None:
                return None
            x, y = float(frame[row, 0]), float(frame[row, 1])
            return None if np.isnan(x) or np.isnan(y) else (x, y)

        left, right = (xy(r) for r in self.shoulder_rows)
        scale = None
        if left is not None and right is not None:
            scale = float(np.hypot(left[0] - right[0], left[1] - right[1])) or None
        return FrameSummary(tuple(xy(r) for r in self.hand_rows), scale)


@dataclass
class _Segment:
    frames: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    active_frames: int = 0
    last_active: float = 0.0


class SegmentTracker:
    """Steps 1-2 of the algorithm: frames in, :class:`TrackerAction` out."""

    def __init__(self, config: StreamConfig | None = None):
        self.config = config or StreamConfig()
        self.reset()

    def reset(self) -> None:
        self.history: deque[tuple[float, FrameSummary]] = deque()
        self.segment: _Segment | None = None
        self.resting = True

    def moving(self, t: float) -> bool:
        cfg = self.config
        recent = [s for ht, s in self.history if t - ht <= cfg.still_seconds]
        scales = [s.scale for s in recent if s.scale]
        scale = scales[-1] if scales else 1.0
        for hand in range(2):
            points = [s.hands[hand] for s in recent if s.hands[hand] is not None]
            if len(points) < 2:
                continue
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            travel = float(np.hypot(max(xs) - min(xs), max(ys) - min(ys)))
            if travel > cfg.still_fraction * scale:
                return True
        oldest = next((ht for ht, _ in self.history if t - ht <= cfg.still_seconds), t)
        return len(recent) < 2 or oldest > t - cfg.still_seconds * 0.5

    def push(self, frame: np.ndarray, summary: FrameSummary, t: float) -> TrackerAction | None:
        """Feed one frame at time ``t``; returns an action or None."""
        cfg = self.config
        self.history.append((t, summary))
        while self.history and t - self.history[0][0] > cfg.still_seconds:
            self.history.popleft()
        active = any(h is not None for h in summary.hands) and self.moving(t)

        if self.segment is None:
            if not active:
                if self.resting:
                    return None
                self.resting = True
                return REST
            self.resting = False
            self.segment = _Segment(last_active=t)
        seg = self.segment
        seg.frames.append(frame)
        seg.times.append(t)
        if active:
            seg.active_frames += 1
            seg.last_active = t
        duration = t - seg.times[0]
        if not active and t - seg.last_active >= cfg.end_rest_seconds - cfg.time_eps:
            return self.close()
        if duration >= cfg.max_sign_seconds - cfg.time_eps:
            return self.close()
        if (
            active
            and duration >= cfg.min_sign_seconds - cfg.time_eps
            and seg.active_frames % cfg.partial_every == 0
        ):
            return TrackerAction("partial", list(seg.frames))
        return None

    def flush(self) -> TrackerAction | None:
        """Close the open segment (end of the stream)."""
        return self.close() if self.segment is not None else None

    def close(self) -> TrackerAction:
        seg = self.segment
        assert seg is not None
        self.segment = None
        n = len(seg.times)
        while n > 1 and seg.times[n - 1] > seg.last_active:
            n -= 1
        start, end = seg.times[0], seg.times[n - 1]
        if end - start < self.config.min_sign_seconds - self.config.time_eps:
            self.resting = True  # this "rest" is the entering of rest: not a second one next frame
            return REST
        return TrackerAction("final", seg.frames[:n], start, end)


@dataclass
class _TaggedSegment:
    frames: list[np.ndarray]
    times: list[float]
    start: float  # time of the sign's first tagged frame
    last_in: float  # time of its latest frame tagged inside
    in_frames: int = 0


TAG_O, TAG_B, TAG_I = 0, 1, 2  # columns of a tagger's probabilities (islr.datasets.streams)


class TagDecoder:
    """The learned segmenter's decoder: per-frame O/B/I probabilities in, the actions of
    :class:`SegmentTracker` out (same order, same meaning).

    A frame is *inside* a sign when ``P(B) + P(I) >= sign_threshold``. Outside, an inside frame
    opens a sign. Inside, a frame where ``P(B)`` rises to ``begin_threshold`` (the frame before
    was under it) begins a new sign once the open one lasted ``min_sign_seconds``: the open one
    closes at the frame before (two signs with no rest between them). The sign closes after
    ``out_seconds`` outside, or at ``max_sign_seconds``. Its frames for the classifier: the
    tagged ones plus up to ``context_seconds`` of frames before and after (not across a
    B split). Partials and the "rest" on entering rest as in :class:`SegmentTracker`.
    """

    def __init__(self, config: StreamConfig | None = None):
        self.config = config or StreamConfig()
        self.reset()

    def reset(self) -> None:
        self.segment: _TaggedSegment | None = None
        self.resting = True
        self.was_begin = False
        self.before: deque[tuple[np.ndarray, float]] = deque()  # recent frames outside a sign

    def push(self, frame: np.ndarray, probs: np.ndarray, t: float) -> TrackerAction | None:
        """One frame's tag probabilities ``(3,)`` (O, B, I) at time ``t``; an action or None."""
        cfg, eps = self.config, self.config.time_eps
        inside = float(probs[TAG_B]) + float(probs[TAG_I]) >= cfg.sign_threshold
        begin = float(probs[TAG_B]) >= cfg.begin_threshold
        rising, self.was_begin = begin and not self.was_begin, begin
        seg = self.segment
        if seg is None:
            if inside:
                self._open(frame, t, context=True)
                return None
            self.before.append((frame, t))
            while self.before and t - self.before[0][1] > cfg.context_seconds:
                self.before.popleft()  # (kept a frame longer: _open picks by time)
            if self.resting:
                return None
            self.resting = True
            return REST
        if inside and rising and t - seg.start >= cfg.min_sign_seconds - eps:
            action = self.close(context=False)
            self._open(frame, t, context=False)  # no frames of the sign before as its context
            return action
        seg.frames.append(frame)
        seg.times.append(t)
        if inside:
            seg.last_in = t
            seg.in_frames += 1
        elif t - seg.last_in >= cfg.out_seconds - eps:
            return self.close(context=True)
        if t - seg.start >= cfg.max_sign_seconds - eps:
            return self.close(context=True)
        if (
            inside
            and t - seg.start >= cfg.min_sign_seconds - eps
            and seg.in_frames % cfg.partial_every == 0
        ):
            return TrackerAction("partial", list(seg.frames))
        return None

    def _open(self, frame: np.ndarray, t: float, context: bool) -> None:
        eps = self.config.time_eps
        lead = [(f, ft) for f, ft in self.before if t - ft <= self.config.context_seconds + eps]
        lead = lead if context else []
        self.before.clear()
        self.resting = False
        self.segment = _TaggedSegment(
            frames=[f for f, _ in lead] + [frame],
            times=[ft for _, ft in lead] + [t],
            start=t,
            last_in=t,
            in_frames=1,
        )

    def flush(self) -> TrackerAction | None:
        """Close the open sign (end of the stream)."""
        return self.close(context=True) if self.segment is not None else None

    def close(self, context: bool) -> TrackerAction:
        """End the open sign; ``context``: with frames after it (not when the next begins)."""
        seg = self.segment
        assert seg is not None
        self.segment = None
        cfg = self.config
        until = seg.last_in + (cfg.context_seconds if context else 0.0) + cfg.time_eps
        n = sum(1 for ft in seg.times if ft <= until)
        if seg.last_in - seg.start < cfg.min_sign_seconds - cfg.time_eps:
            self.resting = True
            return REST
        return TrackerAction("final", seg.frames[:n], seg.start, seg.last_in)


class LearnedTracker:
    """:class:`SegmentTracker`'s interface over a tagger and :class:`TagDecoder`.

    ``tag(frames)`` gets the last ``window`` frames ``(W, N, C)`` and returns their tag
    probabilities ``(W, 3)``; row ``W - 1`` tags the frame ``lookahead`` frames back, which the
    decoder then takes. (The segmenter model's rows depend on the ``window`` frames before them
    only, so this equals tagging the whole stream at once.)
    """

    def __init__(
        self,
        tag: Callable[[np.ndarray], np.ndarray],
        window: int,
        lookahead: int,
        config: StreamConfig | None = None,
    ):
        self.tag, self.window, self.lookahead = tag, int(window), int(lookahead)
        self.decoder = TagDecoder(config)
        self.config = self.decoder.config
        self.reset()

    def reset(self) -> None:
        self.decoder.reset()
        self.frames: deque[np.ndarray] = deque(maxlen=max(self.window, self.lookahead + 1))
        self.times: deque[float] = deque(maxlen=self.frames.maxlen)

    def push(
        self, frame: np.ndarray, summary: FrameSummary | None, t: float
    ) -> TrackerAction | None:
        self.frames.append(frame)
        self.times.append(t)
        if len(self.frames) <= self.lookahead:
            return None
        window = list(self.frames)[-self.window :]
        probs = self.tag(np.stack(window))[-1]
        k = len(self.frames) - 1 - self.lookahead
        return self.decoder.push(self.frames[k], probs, self.times[k])

    def flush(self) -> TrackerAction | None:
        return self.decoder.flush()
