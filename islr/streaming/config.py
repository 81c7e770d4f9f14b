"""The streaming segmenter's settings (:class:`StreamConfig`).

The settings travel with the model: export writes them into the ONNX metadata (``"stream"``,
:mod:`islr.modelfile`), the server segments with them and serves them in ``GET /v1/model``, and
the page reads them from there, so the page and the server segment alike.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

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
