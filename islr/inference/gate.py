"""Is anyone signing? A clip with no hand in view, or hands that hardly move, is no sign: the
classifier must not name a word for a person sitting idle (it names *something* for any input).

The same idea as the stream segmenter's activity test (:mod:`islr.streaming`: a hand
detected and moving), for a whole clip: a hand seen in at least ``min_hand_share`` of the frames,
and some hand's wrist travelling (the diagonal of its positions' bounding box) at least
``min_travel`` shoulder widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from islr.landmarks import LandmarkSequence, get_layout
from islr.landmarks.layouts import HAND_WRIST, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER


@dataclass(frozen=True)
class SigningGate:
    """Thresholds of :func:`is_signing`. On INCLUDE-50 train+val the smallest share of frames
    with a hand is 0.21 (1st percentile 0.39) and the smallest wrist travel 0.18 shoulder
    widths; the 4th person's hello moves the wrist by a median 0.03 (a raised hand, fingers
    waving), so travel is off by default: only a clip without hands is no sign."""

    min_hand_share: float = 0.15
    min_travel: float = 0.0  # shoulder widths


def hand_activity(seq: LandmarkSequence) -> tuple[float, float]:
    """(share of frames with a hand, largest wrist travel in shoulder widths; 0 without both
    shoulders ever seen, where travel is measured in image widths instead)."""
    layout = get_layout(seq.layout)
    data = seq.data[..., :2].astype(np.float64)
    width, height = seq.extra.get("image_width"), seq.extra.get("image_height")
    if width and height:
        data[..., 1] *= float(height) / float(width)
    hands = [c for c in ("left_hand", "right_hand") if layout.has(c)]
    if not hands or data.shape[0] == 0:
        return 0.0, 0.0
    seen = np.zeros(data.shape[0], dtype=bool)
    travel = 0.0
    for hand in hands:
        wrist = data[:, layout.index(hand, HAND_WRIST)]
        ok = np.isfinite(wrist).all(-1)
        seen |= ok
        if ok.sum() >= 2:
            travel = max(travel, float(np.linalg.norm(np.ptp(wrist[ok], axis=0))))
    scale = 1.0
    if layout.has("pose"):
        left = data[:, layout.index("pose", POSE_LEFT_SHOULDER)]
        right = data[:, layout.index("pose", POSE_RIGHT_SHOULDER)]
        w = np.linalg.norm(left - right, axis=-1)
        if np.isfinite(w).any():
            scale = max(float(np.nanmedian(w)), 1e-6)
    return float(seen.mean()), travel / scale


def is_signing(seq: LandmarkSequence, gate: SigningGate | None = None) -> bool:
    """Whether ``seq`` may hold a sign (see the module docstring)."""
    gate = gate or SigningGate()
    share, travel = hand_activity(seq)
    return share >= gate.min_hand_share and travel >= gate.min_travel


__all__ = ["SigningGate", "hand_activity", "is_signing"]
