"""Augmentations: pure functions ``(T, N, C) array [+ rng] -> array`` on raw landmarks, and the
same as named, composable transforms (``Compose.from_config([{"name": ..., "p": ...}, ...])``).

They act on the model input before normalisation (coordinates in image-width units, NaN =
missing), so every change they make is one a camera, a signer or a detector could make: another
speed, angle, distance, handedness, dropped detections. NaN stays NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from islr.errors import ConfigError
from islr.features import webcam as W
from islr.features.config import AugmentConfig
from islr.features.model_input import resample
from islr.landmarks import get_layout
from islr.landmarks.layouts import (
    POSE_LEFT_SHOULDER,
    POSE_RIGHT_SHOULDER,
    Layout,
    mirror_permutation,
)


def body_centre(data: np.ndarray, layout: Layout) -> np.ndarray:
    """(x, y) the signer turns around: mean shoulder midpoint, else the mean of all points."""
    if layout.has("pose"):
        left = data[:, layout.index("pose", POSE_LEFT_SHOULDER), :2]
        right = data[:, layout.index("pose", POSE_RIGHT_SHOULDER), :2]
        mid = (left + right) / 2
        if not np.isnan(mid).all():
            return np.nanmean(mid, axis=0)
    if np.isnan(data[..., :2]).all():
        return np.zeros(2, dtype=np.float32)
    return np.nanmean(data[..., :2].reshape(-1, 2), axis=0)


def mirror(data: np.ndarray, layout: Layout) -> np.ndarray:
    """A left-handed signer: flip x about the body centre and swap left/right points."""
    out = data[:, mirror_permutation(layout)].copy()
    cx = body_centre(data, layout)[0]
    out[..., 0] = 2 * cx - out[..., 0]
    return out


def affine_xy(data: np.ndarray, matrix: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Apply a 2x2 ``matrix`` to (x, y) around ``centre``; z is left as is."""
    out = data.copy()
    out[..., :2] = (data[..., :2] - centre) @ matrix.T + centre
    return out


def rotate(data: np.ndarray, degrees: float, centre: np.ndarray) -> np.ndarray:
    a = np.deg2rad(degrees)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], dtype=np.float32)
    return affine_xy(data, m, centre)


def scale(data: np.ndarray, sx: float, sy: float, centre: np.ndarray) -> np.ndarray:
    out = affine_xy(data, np.diag([sx, sy]).astype(np.float32), centre)
    if out.shape[2] > 2:
        out[..., 2] *= (sx + sy) / 2
    return out


def shear_shift(
    data: np.ndarray, shear_x: float, shear_y: float, shift: np.ndarray, centre: np.ndarray
) -> np.ndarray:
    m = np.array([[1.0, shear_x], [shear_y, 1.0]], dtype=np.float32)
    out = affine_xy(data, m, centre)
    out[..., :2] += shift
    return out


def add_noise(data: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    return data + rng.normal(0.0, std, size=data.shape).astype(np.float32)


def time_warp(
    data: np.ndarray, speed: float, strength: float, rng: np.random.Generator
) -> np.ndarray:
    """Play at ``speed`` (2 = twice as fast) with a smooth random non-linear warp of time."""
    n = data.shape[0]
    new_len = max(2, int(round(n / speed)))
    u = np.linspace(0.0, 1.0, new_len)
    # a random monotone warp: u + a * sin(pi * u) * ... keeps the end points fixed
    a = rng.uniform(-strength, strength)
    warped = np.clip(u + a * np.sin(np.pi * u), 0.0, 1.0)
    warped = np.maximum.accumulate(warped)
    idx = np.clip(np.round(warped * (n - 1)).astype(np.int64), 0, n - 1)
    return data[idx]


def temporal_shift(data: np.ndarray, start: int, end: int) -> np.ndarray:
    """Trim (positive) or pad by repeating the edge frame (negative) at each end."""
    n = data.shape[0]
    lo = max(0, start)
    hi = n - max(0, end)
    if hi - lo < 2:
        return data
    out = data[lo:hi]
    if start < 0:
        out = np.concatenate([np.repeat(out[:1], -start, axis=0), out])
    if end < 0:
        out = np.concatenate([out, np.repeat(out[-1:], -end, axis=0)])
    return out


def temporal_mask(data: np.ndarray, start: int, length: int) -> np.ndarray:
    """Frames ``start .. start+length`` detected nowhere (as when the detector loses the signer)."""
    out = data.copy()
    out[start : start + length] = np.nan
    return out


def drop_detections(data: np.ndarray, rows: slice, frames: np.ndarray) -> np.ndarray:
    """Points ``rows`` (e.g. one hand) undetected in ``frames`` (a bool mask over time)."""
    out = data.copy()
    block = out[:, rows]
    block[frames] = np.nan
    out[:, rows] = block
    return out


# ---- named transforms ------------------------------------------------------------------------
# The functions above as small named steps (pyskl style), composed in a list. Training builds
# the list from AugmentConfig; the robustness perturbations (islr.evaluation) are the same steps
# with fixed parameters.


def made_up_non_sign(
    a: np.ndarray, b: np.ndarray, layout: Layout, rng: np.random.Generator
) -> np.ndarray:
    """A movement that is no known sign, made of two signs' clips: one clip played backwards, or
    its right hand replaced by the other clip's (time-aligned). Never a part of a sign: a stream's
    segments carry the end of the sign before them, and must still read as their sign."""
    if not layout.has("right_hand") or rng.random() < 0.5:
        return a[::-1].copy()
    hand = layout.slice("right_hand")
    out = a.copy()
    out[:, hand] = resample(b, len(a))[:, hand]
    return out


@dataclass
class Clip:
    """A sequence on its way through the transforms: ``(T, N, C)`` data and its layout.

    The body centre that rotation, scaling and shear turn around is computed once, after the
    last change of timing or handedness, and then shared by those affine steps.
    """

    data: np.ndarray
    layout: Layout
    _centre: np.ndarray | None = None

    def centre(self) -> np.ndarray:
        if self._centre is None:
            self._centre = body_centre(self.data, self.layout)
        return self._centre

    def with_data(self, data: np.ndarray, keep_centre: bool = False) -> Clip:
        return Clip(data, self.layout, self._centre if keep_centre else None)


class Transform(Protocol):
    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip: ...


TRANSFORMS: dict[str, type] = {}


def register_transform(name: str) -> Callable[[type], type]:
    """Class decorator: make a transform available by ``name`` in a transform list."""

    def wrap(cls: type) -> type:
        if name in TRANSFORMS:
            raise ValueError(f"transform {name!r} is already registered")
        TRANSFORMS[name] = cls
        cls.name = name
        return cls

    return wrap


@register_transform("mirror")
@dataclass
class Mirror:
    """A left-handed signer (see :func:`mirror`)."""

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        return clip.with_data(mirror(clip.data, clip.layout))


@register_transform("time_warp")
@dataclass
class TimeWarp:
    """Another speed, drawn from ``speed_range`` (log-uniform unless ``log_uniform`` is off),
    with a smooth random warp of time of up to ``strength``."""

    speed_range: tuple[float, float] = (0.6, 1.6)
    strength: float = 0.15
    log_uniform: bool = True

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        if clip.data.shape[0] < 4:
            return clip
        lo, hi = self.speed_range
        if self.log_uniform:
            speed = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        else:
            speed = float(rng.uniform(lo, hi))
        return clip.with_data(time_warp(clip.data, speed, self.strength, rng))


@register_transform("temporal_shift")
@dataclass
class TemporalShift:
    """Trim or pad up to ``fraction`` of the length at each end."""

    fraction: float = 0.15

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        k = max(1, int(self.fraction * clip.data.shape[0]))
        start, end = int(rng.integers(-k, k + 1)), int(rng.integers(-k, k + 1))
        return clip.with_data(temporal_shift(clip.data, start, end))


@register_transform("rotate")
@dataclass
class Rotate:
    """Turn about the body centre by up to ``max_degrees`` (exactly ``±max_degrees`` with
    ``only_extremes``)."""

    max_degrees: float = 15.0
    only_extremes: bool = False

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        d = self.max_degrees
        degrees = float(rng.choice([-d, d])) if self.only_extremes else rng.uniform(-d, d)
        return clip.with_data(rotate(clip.data, degrees, clip.centre()), keep_centre=True)


@register_transform("scale")
@dataclass
class Scale:
    """Zoom about the body centre by a factor from ``scale_range``, x and y each jittered by up
    to ``aspect_jitter``."""

    scale_range: tuple[float, float] = (0.75, 1.3)
    aspect_jitter: float = 0.1

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        s = rng.uniform(*self.scale_range)
        j = self.aspect_jitter
        sx, sy = s * rng.uniform(1 - j, 1 + j), s * rng.uniform(1 - j, 1 + j)
        return clip.with_data(scale(clip.data, sx, sy, clip.centre()), keep_centre=True)


@register_transform("shear_shift")
@dataclass
class ShearShift:
    """Shear by up to ``shear`` about the body centre and move by up to ``shift`` widths."""

    shear: float = 0.15
    shift: float = 0.08

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        shear_x = rng.uniform(-self.shear, self.shear)
        shear_y = rng.uniform(-self.shear, self.shear)
        shift = rng.uniform(-self.shift, self.shift, size=2).astype(np.float32)
        out = shear_shift(clip.data, shear_x, shear_y, shift, clip.centre())
        return clip.with_data(out, keep_centre=True)


@register_transform("noise")
@dataclass
class Noise:
    """Gaussian jitter of ``std`` image widths on every coordinate."""

    std: float = 0.004

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        return clip.with_data(add_noise(clip.data, self.std, rng))


@register_transform("temporal_mask")
@dataclass
class TemporalMask:
    """Lose the signer for a span of up to ``fraction`` of the length."""

    fraction: float = 0.2

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        n = clip.data.shape[0]
        if n < 4:
            return clip
        length = int(rng.integers(1, max(2, int(self.fraction * n)) + 1))
        start = int(rng.integers(0, n - length + 1))
        return clip.with_data(temporal_mask(clip.data, start, length))


@register_transform("drop_hands")
@dataclass
class DropHands:
    """Drop hand detections in a ``fraction`` of the frames: one random hand or ``both``; the
    fraction drawn from ``[0, fraction)`` per clip unless ``fixed_fraction``."""

    fraction: float = 0.3
    both: bool = False
    fixed_fraction: bool = False

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        hands = [c for c in ("left_hand", "right_hand") if clip.layout.has(c)]
        if not hands:
            return clip
        if not self.both:
            hands = [hands[int(rng.integers(len(hands)))]]
        data = clip.data
        for hand in hands:
            draws = rng.random(data.shape[0])
            threshold = self.fraction if self.fixed_fraction else rng.uniform(0, self.fraction)
            data = drop_detections(data, clip.layout.slice(hand), draws < threshold)
        return clip.with_data(data)


# ---- webcam conditions (islr.features.webcam) ------------------------------------------------


@register_transform("close_framing")
@dataclass
class CloseFraming:
    """A laptop webcam close up: the shoulders at (``shoulder_offset`` of the frame's height
    from) the bottom edge, hands below it lost, a head ``head_room`` times nose-to-shoulder
    height tall frame (each drawn from its range)."""

    head_room: tuple[float, float] = (2.2, 3.2)
    shoulder_offset: tuple[float, float] = (-0.1, 0.1)
    aspects: tuple[float, ...] = (4 / 3, 16 / 9)

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        aspect = float(rng.choice(self.aspects))
        box = W.close_framing_box(
            clip.data, clip.layout, aspect, float(rng.uniform(*self.head_room)),
            float(rng.uniform(*self.shoulder_offset)),
        )  # fmt: skip
        return clip if box is None else clip.with_data(W.crop_to_box(clip.data, clip.layout, box))


@register_transform("aspect_frame")
@dataclass
class AspectFrame:
    """Another frame shape (width / height, one of ``aspects``) cut from a ``source_aspect``
    frame around the signer (see :func:`islr.features.webcam.aspect_box`)."""

    aspects: tuple[float, ...] = (4 / 3, 1.0, 9 / 16)
    source_aspect: float = 16 / 9

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        aspect = float(rng.choice(self.aspects))
        box = W.aspect_box(clip.data, clip.layout, aspect, 1 / self.source_aspect)
        return clip if box is None else clip.with_data(W.crop_to_box(clip.data, clip.layout, box))


@register_transform("perspective")
@dataclass
class Perspective:
    """The camera above or below (pitch) and to a side (yaw) by up to the given degrees (each
    exactly ``±`` its maximum with ``only_extremes``)."""

    max_pitch: float = 20.0
    max_yaw: float = 30.0
    only_extremes: bool = False

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        if self.only_extremes:
            pitch, yaw = self.max_pitch, self.max_yaw
        else:
            pitch = rng.uniform(-self.max_pitch, self.max_pitch)
            yaw = rng.uniform(-self.max_yaw, self.max_yaw)
        return clip.with_data(W.perspective(clip.data, clip.layout, pitch, yaw))


@register_transform("body_proportions")
@dataclass
class BodyProportions:
    """Another person's build: shoulder width, upper arm, forearm, hand and head each scaled by
    a factor drawn from ``1 ± spread`` (hands ``1 ± hand_spread``)."""

    spread: float = 0.15
    hand_spread: float = 0.2

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        f = rng.uniform(1 - self.spread, 1 + self.spread, size=4)
        h = rng.uniform(1 - self.hand_spread, 1 + self.hand_spread)
        out = W.body_proportions(clip.data, clip.layout, f[0], f[1], f[2], h, f[3])
        return clip.with_data(out)


@register_transform("frame_rate")
@dataclass
class FrameRate:
    """A slower camera: every ``n``-th frame (2: 30 to 15 fps)."""

    n: int = 2

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        return clip.with_data(W.every_nth_frame(clip.data, self.n))


@register_transform("drop_frames")
@dataclass
class DropFrames:
    """A stalling camera: up to ``fraction`` of the frames never arrive (exactly that many
    with ``fixed_fraction``)."""

    fraction: float = 0.2
    fixed_fraction: bool = False

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        f = self.fraction if self.fixed_fraction else rng.uniform(0, self.fraction)
        return clip.with_data(W.drop_frames(clip.data, f, rng))


@register_transform("lose_fast_hands")
@dataclass
class LoseFastHands:
    """Motion blur: each hand lost in (up to) ``fraction`` of its frames, the fastest."""

    fraction: float = 0.3
    fixed_fraction: bool = False

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        f = self.fraction if self.fixed_fraction else rng.uniform(0, self.fraction)
        return clip.with_data(W.lose_fast_hands(clip.data, clip.layout, f))


@dataclass
class RandomApply:
    """``transform`` with probability ``p`` (a draw is taken whatever ``p``)."""

    transform: Transform
    p: float = 1.0

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        return self.transform(clip, rng) if rng.random() < self.p else clip


@dataclass
class Compose:
    """Transforms applied in order."""

    transforms: list[Transform] = field(default_factory=list)

    def __call__(self, clip: Clip, rng: np.random.Generator) -> Clip:
        for transform in self.transforms:
            clip = transform(clip, rng)
        return clip

    def apply(self, data: np.ndarray, layout: str | Layout, rng: np.random.Generator) -> np.ndarray:
        """The transforms on a ``(T, N, C)`` array: float32 out."""
        out = self(Clip(data, get_layout(layout)), rng).data
        return out.astype(np.float32, copy=False)

    @classmethod
    def from_config(cls, steps: list[dict[str, Any]]) -> Compose:
        """From a list like ``[{"name": "rotate", "p": 0.5, "max_degrees": 15}, ...]``."""
        transforms: list[Transform] = []
        for step in steps:
            params = dict(step)
            name = params.pop("name", None)
            if name not in TRANSFORMS:
                raise ConfigError(
                    f"unknown augmentation {name!r}; known: {', '.join(sorted(TRANSFORMS))}"
                )
            p = float(params.pop("p", 1.0))
            try:
                transform = TRANSFORMS[name](**params)
            except TypeError as e:
                raise ConfigError(f"augmentation {name!r}: {e}") from None
            transforms.append(RandomApply(transform, p))
        return cls(transforms)


def augmentation_steps(cfg: AugmentConfig) -> list[dict[str, Any]]:
    """The transform list of a flat :class:`AugmentConfig` (its keys stay the config surface),
    in the order training has always applied them, then the webcam conditions whose
    probability is not 0; mixup is batch-level (see training)."""
    webcam = [
        {
            "name": "close_framing",
            "p": cfg.p_close_framing,
            "head_room": cfg.close_framing_head_room,
        },
        {"name": "aspect_frame", "p": cfg.p_aspect_frame},
        {
            "name": "perspective",
            "p": cfg.p_perspective,
            "max_pitch": cfg.perspective_pitch,
            "max_yaw": cfg.perspective_yaw,
        },
        {"name": "drop_frames", "p": cfg.p_drop_frames, "fraction": cfg.drop_frames_frac},
        {
            "name": "body_proportions",
            "p": cfg.p_body_proportions,
            "spread": cfg.body_proportions_spread,
        },  # fmt: skip
        {"name": "lose_fast_hands", "p": cfg.p_lose_fast_hands, "fraction": cfg.fast_hands_frac},
    ]
    return [
        {"name": "mirror", "p": cfg.p_mirror},
        {
            "name": "time_warp",
            "p": cfg.p_time_warp,
            "speed_range": cfg.speed_range,
            "strength": cfg.warp_strength,
        },
        {"name": "temporal_shift", "p": cfg.p_temporal_shift, "fraction": cfg.shift_frac},
        {"name": "rotate", "p": cfg.p_rotate, "max_degrees": cfg.rotate_deg},
        {
            "name": "scale",
            "p": cfg.p_scale,
            "scale_range": cfg.scale_range,
            "aspect_jitter": cfg.aspect_jitter,
        },
        {"name": "shear_shift", "p": cfg.p_shear_shift, "shear": cfg.shear, "shift": cfg.shift},
        {"name": "noise", "p": cfg.p_noise, "std": cfg.noise_std},
        {"name": "temporal_mask", "p": cfg.p_temporal_mask, "fraction": cfg.temporal_mask_frac},
        {"name": "drop_hands", "p": cfg.p_spatial_mask, "fraction": cfg.hand_drop_frac},
    ] + [step for step in webcam if step["p"] > 0]


def augment_sequence(
    data: np.ndarray, layout_name: str | Layout, cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Apply each augmentation with its probability (mixup is batch-level: see training)."""
    return Compose.from_config(augmentation_steps(cfg)).apply(data, layout_name, rng)


def mixup(
    batch: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Blend each sample with a shuffled partner; ``targets`` are one-hot/soft ``(B, K)``."""
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1 - lam)  # the first sample dominates, so its missing points stay missing
    perm = rng.permutation(batch.shape[0])
    partner = batch[perm]
    mixed = np.where(np.isnan(partner), batch, lam * batch + (1 - lam) * partner)
    return mixed.astype(np.float32), lam * targets + (1 - lam) * targets[perm]
