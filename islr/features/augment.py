"""Augmentations: pure functions ``(T, N, C) array [+ rng] -> array`` on raw landmarks.

They act on the model input before normalisation (coordinates in image-width units, NaN =
missing), so every change they make is one a camera, a signer or a detector could make: another
speed, angle, distance, handedness, dropped detections. NaN stays NaN.
"""

from __future__ import annotations

import numpy as np

from islr.features.config import AugmentConfig
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


def augment_sequence(
    data: np.ndarray, layout_name: str, cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Apply each augmentation with its probability (mixup is batch-level: see training)."""
    layout = get_layout(layout_name)
    n = data.shape[0]
    if rng.random() < cfg.p_mirror:
        data = mirror(data, layout)
    if rng.random() < cfg.p_time_warp and n >= 4:
        lo, hi = cfg.speed_range
        speed = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        data = time_warp(data, speed, cfg.warp_strength, rng)
    if rng.random() < cfg.p_temporal_shift:
        k = max(1, int(cfg.shift_frac * data.shape[0]))
        data = temporal_shift(data, int(rng.integers(-k, k + 1)), int(rng.integers(-k, k + 1)))
    centre = body_centre(data, layout)
    if rng.random() < cfg.p_rotate:
        data = rotate(data, rng.uniform(-cfg.rotate_deg, cfg.rotate_deg), centre)
    if rng.random() < cfg.p_scale:
        s = rng.uniform(*cfg.scale_range)
        j = cfg.aspect_jitter
        data = scale(data, s * rng.uniform(1 - j, 1 + j), s * rng.uniform(1 - j, 1 + j), centre)
    if rng.random() < cfg.p_shear_shift:
        data = shear_shift(
            data,
            rng.uniform(-cfg.shear, cfg.shear),
            rng.uniform(-cfg.shear, cfg.shear),
            rng.uniform(-cfg.shift, cfg.shift, size=2).astype(np.float32),
            centre,
        )
    if rng.random() < cfg.p_noise:
        data = add_noise(data, cfg.noise_std, rng)
    if rng.random() < cfg.p_temporal_mask and data.shape[0] >= 4:
        length = int(rng.integers(1, max(2, int(cfg.temporal_mask_frac * data.shape[0])) + 1))
        data = temporal_mask(data, int(rng.integers(0, data.shape[0] - length + 1)), length)
    if rng.random() < cfg.p_spatial_mask:
        hands = [c for c in ("left_hand", "right_hand") if layout.has(c)]
        if hands:
            rows = layout.slice(hands[int(rng.integers(len(hands)))])
            frames = rng.random(data.shape[0]) < rng.uniform(0, cfg.hand_drop_frac)
            data = drop_detections(data, rows, frames)
    return data.astype(np.float32, copy=False)


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
