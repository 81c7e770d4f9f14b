"""Streaming segmentation: a live stream of landmark frames -> one prediction per sign.

Pure state machines with no I/O (the web page's ``StreamSegmenter``, ``TagDecoder`` and
``LearnedSegmenter`` in ``islr/serving/static/pipeline.js`` run the same algorithms with the same
settings).

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
3. **Events** (either tracker). While a segment is open and lasted at least ``min_sign_seconds``, every
   ``partial_every``-th active frame the segment so far is classified: a ``partial`` event with the
   top signs. A closed segment is classified once: a ``sign`` event when the best probability
   reaches ``threshold``, else an ``unknown`` event (a segment that is not a known sign: the
   transcript shows "?"). Entering rest with no segment open gives one ``rest`` event. So a stream
   of several signs separated by rests yields exactly one ``sign`` or ``unknown`` per sign, never
   a flicker of changing labels.

Events are plain dicts (JSON-ready): ``{"type": "partial", "top": [{"label", "prob"}...]}``,
``{"type": "sign", "label", "prob", "start", "end", "top"}``,
``{"type": "unknown", "start", "end", "top"}``, ``{"type": "rest"}``.

The settings (:class:`StreamConfig`) travel with the model: export writes them into the ONNX
metadata (``"stream"``), the server segments with them and serves them in ``GET /v1/model``, and
the page reads them from there, so the page and the server segment alike.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from islr.inference.engine import top_labels
from islr.landmarks import Layout, LayoutError, get_layout
from islr.landmarks.layouts import HAND_WRIST, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER

Event = dict[str, Any]
TIME_EPS = 1e-6  # frame times are sums of 1/fps: compare durations with this slack
SEGMENTERS = ("heuristic", "learned")


@dataclass
class StreamConfig:
    """Thresholds of the segmenter; times in seconds so they hold at any frame rate."""

    threshold: float = 0.5  # a sign is reported only when its probability reaches this
    min_sign_seconds: float = 0.3  # shorter active stretches are noise, not signs
    end_rest_seconds: float = 0.4  # this long without activity ends a sign
    max_sign_seconds: float = 4.0  # a longer segment is cut here and reported
    still_seconds: float = 0.6  # window of the stillness test
    still_fraction: float = 0.08  # wrist travel below this x shoulder width = still
    partial_every: int = 3  # classify the open segment every this many active frames
    fps: float = 30.0  # frame times when frames come without a timestamp
    top_k: int = 3  # signs listed in partial and sign events
    time_eps: float = TIME_EPS  # slack of every duration comparison
    # Which tracker finds the signs: "learned" (the segmenter model's per-frame B/I/O tags, when a
    # segmenter model is loaded; the heuristic otherwise) or "heuristic" (always). A segmenter's
    # metadata sets "learned" and the decoder's settings below.
    segmenter: str = "heuristic"
    sign_threshold: float = 0.5  # P(B) + P(I) from which a frame is inside a sign
    begin_threshold: float = 0.5  # P(B) from which a new sign begins (rising edge)
    out_seconds: float = 0.1  # this long outside any sign ends the sign
    context_seconds: float = (
        0.5  # frames before a tagged sign (and after, up to out_seconds) also classified
    )

    def __post_init__(self) -> None:
        if self.segmenter not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, got {self.segmenter!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "segmenter":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"stream setting {f.name} must be a number, got {value!r}")
            if f.type == "int":
                if value != round(value):
                    raise ValueError(f"stream setting {f.name} must be a whole number, got {value}")
                setattr(self, f.name, int(value))
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.partial_every < 1 or self.fps <= 0 or self.top_k < 1:
            raise ValueError("partial_every, fps and top_k must be positive")
        if min(self.min_sign_seconds, self.end_rest_seconds, self.time_eps) < 0:
            raise ValueError("min_sign_seconds, end_rest_seconds and time_eps must be >= 0")
        if min(self.out_seconds, self.context_seconds) < 0:
            raise ValueError("out_seconds and context_seconds must be >= 0")
        if not (0 <= self.sign_threshold <= 1 and 0 <= self.begin_threshold <= 1):
            raise ValueError("sign_threshold and begin_threshold must be in [0, 1]")
        if min(self.max_sign_seconds, self.still_seconds) <= 0:
            raise ValueError("max_sign_seconds and still_seconds must be positive")

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON (the model metadata's ``"stream"``; the page's settings)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: dict[str, Any] | None) -> StreamConfig:
        """Settings from JSON; missing keys take the defaults, unknown keys (a later version's
        settings) are ignored. ``ValueError`` for a bad value."""
        if settings is None:
            return cls()
        if not isinstance(settings, dict):
            raise ValueError(f"stream settings must be a JSON object, got {settings!r}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})


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
    """Steps 1-2 of the algorithm: frames in, ``("partial"|"final"|"rest", ...)`` actions out."""

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

    def push(self, frame: np.ndarray, summary: FrameSummary, t: float) -> tuple[str, Any] | None:
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
                return ("rest", None)
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
            return ("partial", list(seg.frames))
        return None

    def flush(self) -> tuple[str, Any] | None:
        """Close the open segment (end of the stream)."""
        return self.close() if self.segment is not None else None

    def close(self) -> tuple[str, Any]:
        seg = self.segment
        assert seg is not None
        self.segment = None
        n = len(seg.times)
        while n > 1 and seg.times[n - 1] > seg.last_active:
            n -= 1
        start, end = seg.times[0], seg.times[n - 1]
        if end - start < self.config.min_sign_seconds - self.config.time_eps:
            self.resting = True  # this "rest" is the entering of rest: not a second one next frame
            return ("rest", None)
        return ("final", (seg.frames[:n], start, end))


@dataclass
class _TaggedSegment:
    frames: list[np.ndarray]
    times: list[float]
    start: float  # time of the sign's first tagged frame
    last_in: float  # time of its latest frame tagged inside
    in_frames: int = 0


TAG_O, TAG_B, TAG_I = 0, 1, 2  # columns of a tagger's probabilities (islr.features.streams)


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

    def push(self, frame: np.ndarray, probs: np.ndarray, t: float) -> tuple[str, Any] | None:
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
            return ("rest", None)
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
            return ("partial", list(seg.frames))
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

    def flush(self) -> tuple[str, Any] | None:
        """Close the open sign (end of the stream)."""
        return self.close(context=True) if self.segment is not None else None

    def close(self, context: bool) -> tuple[str, Any]:
        """End the open sign; ``context``: with frames after it (not when the next begins)."""
        seg = self.segment
        assert seg is not None
        self.segment = None
        cfg = self.config
        until = seg.last_in + (cfg.context_seconds if context else 0.0) + cfg.time_eps
        n = sum(1 for ft in seg.times if ft <= until)
        if seg.last_in - seg.start < cfg.min_sign_seconds - cfg.time_eps:
            self.resting = True
            return ("rest", None)
        return ("final", (seg.frames[:n], seg.start, seg.last_in))


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
    ) -> tuple[str, Any] | None:
        self.frames.append(frame)
        self.times.append(t)
        if len(self.frames) <= self.lookahead:
            return None
        window = list(self.frames)[-self.window :]
        probs = self.tag(np.stack(window))[-1]
        k = len(self.frames) - 1 - self.lookahead
        return self.decoder.push(self.frames[k], probs, self.times[k])

    def flush(self) -> tuple[str, Any] | None:
        return self.decoder.flush()


def sign_confidence(probs: np.ndarray, n_known: int) -> float:
    """How sure the model is that a segment is its best sign, for the unknown-sign test.

    The best probability over the model's own signs' share of it (the first ``n_known``): for one
    of them this is the classifier's own probability, whatever signs were added; for an added
    sign it is its calibrated ``exp(a * similarity + b)`` (see islr.inference.vocabulary). With no
    added signs it is the best probability.
    """
    known_mass = float(np.sum(probs[:n_known]))
    return float(np.max(probs)) / known_mass if known_mass > 0 else 0.0


class StreamSegmenter:
    """Frames of one stream in, events out (step 3); ``classify`` maps frames to probabilities.

    ``tagger`` (a :class:`~islr.inference.segmenter.SegmenterModel`: ``tag_window``, ``window``,
    ``lookahead``): the learned segmenter, used when ``config.segmenter`` is ``"learned"``;
    without it, or with ``"heuristic"``, the heuristic :class:`SegmentTracker` finds the signs.

    ``classify(frames)`` gets a ``(T, n_points, n_coords)`` array of the segment (not resampled)
    and returns ``(n_classes,)`` probabilities; with an :class:`~islr.inference.Engine`, use
    ``lambda frames: engine.predict_batch([frames])[0]``.
    """

    def __init__(
        self,
        layout: str | Layout,
        labels: list[str],
        classify: Callable[[np.ndarray], np.ndarray],
        config: StreamConfig | None = None,
        tagger: Any = None,
        n_known: int | None = None,
    ):
        self.config = config or StreamConfig()
        self.labels = list(labels)
        # the model's own signs come first in the labels, signs added to its vocabulary after
        self.n_known = len(self.labels) if n_known is None else n_known
        self.classify = classify
        self.summarize = FrameSummarizer(layout)
        self.tracker: SegmentTracker | LearnedTracker = SegmentTracker(self.config)
        if self.config.segmenter == "learned" and tagger is not None:
            self.tracker = LearnedTracker(
                tagger.tag_window, tagger.window, tagger.lookahead, self.config
            )
        self.n_frames = 0

    def reset(self) -> None:
        self.tracker.reset()
        self.n_frames = 0

    def push(self, frame: np.ndarray, t: float | None = None) -> list[Event]:
        """One ``(n_points, n_coords)`` frame (NaN = not detected) at ``t`` seconds."""
        if t is None:
            t = self.n_frames / self.config.fps
        self.n_frames += 1
        action = self.tracker.push(frame, self.summarize(frame), float(t))
        return self._events(action)

    def flush(self) -> list[Event]:
        """End of the stream: report the open segment, if any."""
        return self._events(self.tracker.flush())

    def _top(self, probs: np.ndarray) -> list[dict[str, Any]]:
        top = top_labels(probs, self.labels, self.config.top_k)
        return [{"label": label, "prob": round(prob, 5)} for label, prob in top]

    def _events(self, action: tuple[str, Any] | None) -> list[Event]:
        if action is None:
            return []
        kind, payload = action
        if kind == "rest":
            return [{"type": "rest"}]
        if kind == "partial":
            return [{"type": "partial", "top": self._top(self.classify(np.stack(payload)))}]
        frames, start, end = payload
        probs = self.classify(np.stack(frames))
        top = self._top(probs)
        best = top[0]
        times = {"start": round(start, 3), "end": round(end, 3)}
        if sign_confidence(probs, self.n_known) < self.config.threshold:
            return [{"type": "unknown", **times, "top": top}]
        return [{"type": "sign", "label": best["label"], "prob": best["prob"], **times, "top": top}]
