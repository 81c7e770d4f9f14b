"""Streaming segmentation: a live stream of landmark frames -> one event per sign.

``config`` (the settings, :class:`StreamConfig`), ``trackers`` (finding the signs: the heuristic
:class:`SegmentTracker`, the learned segmenter's :class:`TagDecoder` and :class:`LearnedTracker`)
and ``events`` (:class:`StreamSegmenter`: classified segments -> events). Pure state machines with
no I/O and no model: the classifier and the segmenter are passed in.
"""

from islr.streaming.config import SEGMENTERS, StreamConfig
from islr.streaming.events import Event, StreamSegmenter, sign_confidence, softmax, top_labels
from islr.streaming.trackers import (
    FrameSummarizer,
    FrameSummary,
    LearnedTracker,
    SegmentTracker,
    TagDecoder,
    TrackerAction,
)

__all__ = [
    "SEGMENTERS",
    "Event",
    "FrameSummarizer",
    "FrameSummary",
    "LearnedTracker",
    "SegmentTracker",
    "StreamConfig",
    "StreamSegmenter",
    "TagDecoder",
    "TrackerAction",
    "sign_confidence",
    "softmax",
    "top_labels",
]
