"""A live stream of landmark frames -> one event per sign (step 3 of
:mod:`islr.streaming.trackers`' algorithm).

While a segment is open and lasted at least ``min_sign_seconds``, every ``partial_every``-th
active frame the segment so far is classified: a ``partial`` event with the top signs. A closed
segment is classified once: a ``sign`` event when the best probability reaches ``threshold``,
else an ``unknown`` event (a segment that is not a known sign: the transcript shows "?").
Entering rest with no segment open gives one ``rest`` event. So a stream of several signs
separated by rests yields exactly one ``sign`` or ``unknown`` per sign, never a flicker of
changing labels.

Events are plain dicts (JSON-ready): ``{"type": "partial", "top": [{"label", "prob"}...]}``,
``{"type": "sign", "label", "prob", "start", "end", "top"}``,
``{"type": "unknown", "start", "end", "top"}``, ``{"type": "rest"}``.
The page's twin (``StreamSegmenter`` in ``islr/serving/static/streaming.js``) builds the same events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from islr.errors import InputError
from islr.landmarks import Layout
from islr.streaming.config import StreamConfig
from islr.streaming.trackers import FrameSummarizer, LearnedTracker, SegmentTracker, TrackerAction

Event = dict[str, Any]


class Tagger(Protocol):
    """A learned segmenter as the stream needs it (:class:`~islr.inference.segmenter.
    SegmenterModel`): the tags of the last ``window`` frames, ``lookahead`` frames late."""

    window: int
    lookahead: int

    def tag_window(self, frames: np.ndarray) -> np.ndarray: ...


def top_labels(probs: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """``(label, probability)`` of the ``k`` largest entries of ``probs``, best first (ties in
    label order)."""
    if k < 1:
        raise InputError(f"top_k must be at least 1, got {k}")
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def sign_confidence(probs: np.ndarray, n_known: int) -> float:
    """How sure the model is that a segment is its best sign, for the unknown-sign test.

    The best probability over the model's own signs' share of it (the first ``n_known``): for one
    of them this is the classifier's own probability, whatever signs were added; for an added
    sign it is its calibrated ``exp(a * similarity + b)`` (see islr.vocabulary.scoring). With no
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
        tagger: Tagger | None = None,
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

    def _events(self, action: TrackerAction | None) -> list[Event]:
        if action is None:
            return []
        if action.kind == "rest":
            return [{"type": "rest"}]
        probs = self.classify(np.stack(action.frames))
        if action.kind == "partial":
            return [{"type": "partial", "top": self._top(probs)}]
        start, end = action.start, action.end
        top = self._top(probs)
        best = top[0]
        times = {"start": round(start, 3), "end": round(end, 3)}
        if sign_confidence(probs, self.n_known) < self.config.threshold:
            return [{"type": "unknown", **times, "top": top}]
        return [{"type": "sign", "label": best["label"], "prob": best["prob"], **times, "top": top}]
