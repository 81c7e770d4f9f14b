"""Settings of the input pipeline and of the augmentations (plain dataclasses, YAML-friendly)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

# Upper-body pose points that carry signing information: nose, eyes, ears, mouth corners,
# shoulders, elbows, wrists. Hips and legs are often out of frame in sign videos.
UPPER_BODY_POSE = [0, 2, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]


@dataclass
class FeatureConfig:
    """What the model sees of a landmark sequence.

    ``points`` maps a MediaPipe component to the indices to use (``"all"`` = every point the layout
    stores); components the data's layout lacks are an error at training time. ``coords`` picks
    ``"xy"`` or ``"xyz"`` (MediaPipe advises against using pose z). ``seq_len`` is the number of
    frames every sequence is resampled to.
    """

    seq_len: int = 60
    coords: str = "xy"
    points: dict[str, list[int] | str] = field(
        default_factory=lambda: {
            "left_hand": "all",
            "right_hand": "all",
            "pose": list(UPPER_BODY_POSE),
        }
    )
    normalize: bool = True  # centre on the shoulders' midpoint, scale by shoulder width
    hand_relative: bool = True  # add hand points relative to their wrist, scaled by hand size
    # with hand_relative: also that hand shape turned so that the wrist-to-middle-knuckle line
    # points up (the same shape however the signer holds their hand)
    hand_upright: bool = False
    motion: bool = True  # add first and second differences over time
    presence: bool = True  # add per-frame detected flags per component

    def __post_init__(self) -> None:
        if self.coords not in ("xy", "xyz"):
            raise ValueError(f"coords must be 'xy' or 'xyz', got {self.coords!r}")
        if self.seq_len < 4:
            raise ValueError(f"seq_len must be at least 4, got {self.seq_len}")

    def for_layout(self, layout: str, has_z: bool = True) -> FeatureConfig:
        """This config made concrete for data of ``layout``: ``points: all`` becomes every
        component the layout stores (the seed's raw input), and ``xyz`` falls back to x, y when
        the data has no z (e.g. INCLUDE's keypoints)."""
        from islr.landmarks import get_layout

        features = self
        if features.points == "all":
            components = get_layout(layout).components
            features = replace(features, points={c: "all" for c in components})
        if features.coords == "xyz" and not has_z:
            features = replace(features, coords="xy")
        return features


@dataclass
class AugmentConfig:
    """Training-time augmentations: each has a probability ``p_*`` and a range.

    The seed's seven (time warp, noise, rotation, scaling, masking, temporal shift, mixup), plus
    mirror (a left-handed signer) and an affine shear/shift. Its defaults are the default
    recipe's per-clip augmentations (``configs/default.yaml``): adding a sign to a model whose
    file carries no recipe augments its takes with them.
    """

    p_time_warp: float = 0.5
    speed_range: tuple[float, float] = (0.6, 1.6)  # playback speed factor
    warp_strength: float = 0.15  # non-linear warp of the time axis, fraction of the length
    p_noise: float = 0.3
    noise_std: float = 0.004  # in image-width units
    p_rotate: float = 0.5
    rotate_deg: float = 15.0
    p_scale: float = 0.5
    scale_range: tuple[float, float] = (0.75, 1.3)
    aspect_jitter: float = 0.1  # independent x/y scale, fraction
    p_shear_shift: float = 0.4
    shear: float = 0.15
    shift: float = 0.08
    p_temporal_mask: float = 0.4
    temporal_mask_frac: float = 0.2  # longest masked span, fraction of the length
    p_spatial_mask: float = 0.4
    hand_drop_frac: float = 0.3  # at most this fraction of a hand's detections dropped
    p_temporal_shift: float = 0.3
    shift_frac: float = 0.15  # frames trimmed/padded at the ends, fraction of the length
    p_mirror: float = 0.5
    # a user's webcam (islr.features.webcam); off by default (0 adds no step, so the random
    # draws of the other steps stay as they were)
    p_close_framing: float = 0.0
    close_framing_head_room: tuple[float, float] = (2.2, 3.2)  # frame height / nose-shoulders
    p_aspect_frame: float = 0.0
    p_perspective: float = 0.0
    perspective_pitch: float = 20.0  # degrees, either way
    perspective_yaw: float = 30.0
    p_drop_frames: float = 0.0
    drop_frames_frac: float = 0.25
    p_lose_fast_hands: float = 0.0
    fast_hands_frac: float = 0.3
    # another person's build: shoulder width, arm, hand and head lengths each scaled by 1 ± spread
    p_body_proportions: float = 0.0
    body_proportions_spread: float = 0.15
    p_mixup: float = 0.0
    mixup_alpha: float = 0.4
    # a clip replaced by a segment of its sign as the stream decoder cuts it from a synthesised
    # stream of training clips (islr.training.segments); about this many segments per clip
    p_stream_segment: float = 0.0
    stream_segments_per_clip: float = 3.0

    @classmethod
    def from_dict(cls, settings: dict[str, Any] | None) -> AugmentConfig:
        """Settings from JSON or a checkpoint's recipe; missing keys take the defaults, unknown
        keys are ignored, lists become the tuples they stand for."""
        if not settings:
            return cls()
        defaults = cls()
        values = {}
        for f in fields(cls):
            if f.name in settings:
                value = settings[f.name]
                is_range = isinstance(getattr(defaults, f.name), tuple)
                values[f.name] = tuple(value) if is_range and isinstance(value, list) else value
        return cls(**values)
