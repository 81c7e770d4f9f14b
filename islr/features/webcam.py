"""What a user's webcam does to a sign that INCLUDE's studio camera did not: pure functions
``(T, N, C) array [+ rng] -> array`` on landmarks in image-width units (y down, NaN = missing),
as :mod:`islr.features.augment` works on them.

Each frame is a box in those units, ``(x0, y0, x1, y1)``, placed relative to the signer's body
(shoulders and nose), so the same function serves a clip whose original frame size is unknown.
Cropping to a box re-expresses every point in the new frame's width units and loses what leaves
it as a detector would: a hand whose wrist is outside, a pose point farther outside than
``POSE_MARGIN`` of the box (MediaPipe Pose still guesses points just beyond the edge).
"""

from __future__ import annotations

import numpy as np

from islr.landmarks.layouts import (
    POSE_LEFT_SHOULDER,
    POSE_NOSE,
    POSE_RIGHT_SHOULDER,
    Layout,
)

POSE_MARGIN = 0.05  # of the box's width
Box = tuple[float, float, float, float]


def shoulders(data: np.ndarray, layout: Layout) -> tuple[np.ndarray, float]:
    """The median shoulder midpoint ``(x, y)`` and shoulder width of a clip (NaN if never seen)."""
    if not layout.has("pose"):
        return np.full(2, np.nan), float("nan")
    left = data[:, layout.index("pose", POSE_LEFT_SHOULDER), :2]
    right = data[:, layout.index("pose", POSE_RIGHT_SHOULDER), :2]
    ok = np.isfinite(left).all(-1) & np.isfinite(right).all(-1)
    if not ok.any():
        return np.full(2, np.nan), float("nan")
    mid = np.median((left[ok] + right[ok]) / 2, axis=0)
    return mid, float(np.median(np.linalg.norm(left[ok] - right[ok], axis=-1)))


def _nose(data: np.ndarray, layout: Layout) -> np.ndarray:
    p = data[:, layout.index("pose", POSE_NOSE), :2]
    ok = np.isfinite(p).all(-1)
    return np.median(p[ok], axis=0) if ok.any() else np.full(2, np.nan)


def crop_to_box(data: np.ndarray, layout: Layout, box: Box) -> np.ndarray:
    """``data`` seen through a frame ``box``: coordinates in the box's width units, what leaves
    it lost (hands by their wrist, pose points beyond :data:`POSE_MARGIN`)."""
    x0, y0, x1, y1 = box
    width = x1 - x0
    out = data.copy()
    out[..., :2] = (data[..., :2] - (x0, y0)) / width
    if out.shape[2] > 2:
        out[..., 2] = data[..., 2] / width
    height = (y1 - y0) / width
    x, y = out[..., 0], out[..., 1]
    if layout.has("pose"):
        rows = layout.slice("pose")
        m = POSE_MARGIN
        px, py = x[:, rows], y[:, rows]
        outside = (px < -m) | (px > 1 + m) | (py < -m) | (py > height + m)
        block = out[:, rows]
        block[outside] = np.nan
        out[:, rows] = block
    for hand in ("left_hand", "right_hand"):
        if not layout.has(hand):
            continue
        wrist = layout.slice(hand).start  # hand point 0
        wx, wy = x[:, wrist], y[:, wrist]
        lost = (wx < 0) | (wx > 1) | (wy < 0) | (wy > height)
        block = out[:, layout.slice(hand)]
        block[lost] = np.nan
        out[:, layout.slice(hand)] = block
    return out


def close_framing_box(
    data: np.ndarray,
    layout: Layout,
    aspect: float = 4 / 3,
    head_room: float = 2.6,
    shoulder_offset: float = 0.0,
) -> Box | None:
    """A laptop webcam close up: the frame's bottom edge on the shoulder line (moved down by
    ``shoulder_offset`` of the frame's height; negative: the shoulders below the edge), its
    height ``head_room`` times the nose-to-shoulder height (a large head), centred on the
    signer."""
    mid, _ = shoulders(data, layout)
    nose = _nose(data, layout)
    if not (np.isfinite(mid).all() and np.isfinite(nose).all()):
        return None
    height = head_room * max(mid[1] - nose[1], 1e-3)
    width = aspect * height
    bottom = mid[1] + shoulder_offset * height
    return (mid[0] - width / 2, bottom - height, mid[0] + width / 2, bottom)


def aspect_box(
    data: np.ndarray, layout: Layout, aspect: float, source_height: float, min_width: float = 2.4
) -> Box | None:
    """A frame of ``aspect`` (width / height) cut from a source frame ``[0, 1] x [0,
    source_height]``, centred on the signer: as tall as the source, but at least ``min_width``
    shoulder widths wide (a portrait phone held so the upper body fits)."""
    mid, width_sh = shoulders(data, layout)
    if not (np.isfinite(mid).all() and np.isfinite(width_sh)):
        return None
    width = max(source_height * aspect, min_width * width_sh)
    height = width / aspect
    top = source_height / 2 - height / 2
    return (mid[0] - width / 2, top, mid[0] + width / 2, top + height)


def perspective(
    data: np.ndarray,
    layout: Layout,
    pitch_degrees: float = 0.0,
    yaw_degrees: float = 0.0,
    distance: float = 1.0,
) -> np.ndarray:
    """The signer seen by a camera turned by ``pitch`` (positive: the camera above, looking
    down) and ``yaw`` (positive: the camera to the signer's left), ``distance`` frame widths
    away: the body's plane rotated about the shoulder midpoint and projected through a pinhole."""
    mid, _ = shoulders(data, layout)
    if not np.isfinite(mid).all():
        return data.copy()
    p, q = np.deg2rad(pitch_degrees), np.deg2rad(yaw_degrees)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    yaw = np.array([[np.cos(q), 0, np.sin(q)], [0, 1, 0], [-np.sin(q), 0, np.cos(q)]])
    rotation = yaw @ pitch
    xy = data[..., :2].astype(np.float64) - mid
    flat = np.concatenate([xy, np.zeros(xy.shape[:-1] + (1,))], axis=-1) @ rotation.T
    depth = distance + flat[..., 2]
    out = data.copy()
    out[..., :2] = (distance * flat[..., :2] / depth[..., None] + mid).astype(data.dtype)
    return out


_ARMS = ((11, 13, 15, "left_hand"), (12, 14, 16, "right_hand"))  # shoulder, elbow, wrist
_FACE = tuple(range(11))
_WRIST_POSE_HAND = {15: (17, 19, 21), 16: (18, 20, 22)}  # pose's pinky, index, thumb


def body_proportions(
    data: np.ndarray,
    layout: Layout,
    shoulders_factor: float = 1.0,
    upper_arm: float = 1.0,
    forearm: float = 1.0,
    hand: float = 1.0,
    head: float = 1.0,
) -> np.ndarray:
    """Another person's build, frame by frame along the arm: shoulders ``shoulders_factor``
    times as far from their midpoint, upper arms, forearms and hands (about the wrist) longer by
    their factors, the head (face points about the shoulder midpoint) by ``head``; each point
    moves with the joint it hangs from. Needs pose; NaN stays NaN."""
    if not layout.has("pose"):
        return data.copy()
    out = data.copy()
    xy = data[..., :2].astype(np.float64)
    row = lambda mp: layout.index("pose", mp)  # noqa: E731
    mid = (xy[:, row(11)] + xy[:, row(12)]) / 2
    for mp in _FACE:
        out[:, row(mp), :2] = mid + head * (xy[:, row(mp)] - mid)
    for shoulder, elbow, wrist, hand_name in _ARMS:
        s, e, w = xy[:, row(shoulder)], xy[:, row(elbow)], xy[:, row(wrist)]
        new_s = mid + shoulders_factor * (s - mid)
        new_e = new_s + upper_arm * (e - s)
        new_w = new_e + forearm * (w - e)
        out[:, row(shoulder), :2] = new_s
        out[:, row(elbow), :2] = new_e
        out[:, row(wrist), :2] = new_w
        for mp in _WRIST_POSE_HAND[wrist]:
            out[:, row(mp), :2] = new_w + hand * (xy[:, row(mp)] - w)
        if layout.has(hand_name):
            rows = layout.slice(hand_name)
            points = xy[:, rows]
            own = points[:, :1]  # the hand's own wrist, moved as the pose wrist moved
            shift = np.where(np.isfinite(new_w - w), new_w - w, 0.0)[:, None]
            out[:, rows, :2] = own + shift + hand * (points - own)
    return out.astype(data.dtype)


def every_nth_frame(data: np.ndarray, n: int = 2) -> np.ndarray:
    """A lower frame rate: 30 fps to 15 fps is every 2nd frame."""
    return data[:: max(1, n)]


def drop_frames(data: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A camera that stalls: a random ``fraction`` of the frames never arrives (at least 2 kept)."""
    n = data.shape[0]
    keep = rng.random(n) >= fraction
    if keep.sum() < 2:
        keep[rng.choice(n, size=min(2, n), replace=False)] = True
    return data[keep]


def lose_fast_hands(data: np.ndarray, layout: Layout, fraction: float = 0.3) -> np.ndarray:
    """Motion blur: each hand lost in the ``fraction`` of its detected frames where its wrist
    moves fastest (the frame after a jump)."""
    out = data.copy()
    for hand in ("left_hand", "right_hand"):
        if not layout.has(hand):
            continue
        rows = layout.slice(hand)
        wrist = data[:, rows.start, :2]
        speed = np.full(data.shape[0], np.nan)
        speed[1:] = np.linalg.norm(np.diff(wrist, axis=0), axis=-1)
        seen = np.isfinite(speed)
        if seen.sum() < 2:
            continue
        cut = np.quantile(speed[seen], 1 - fraction)
        block = out[:, rows]
        block[seen & (speed >= cut)] = np.nan
        out[:, rows] = block
    return out


__all__ = [
    "POSE_MARGIN",
    "aspect_box",
    "body_proportions",
    "close_framing_box",
    "crop_to_box",
    "drop_frames",
    "every_nth_frame",
    "lose_fast_hands",
    "perspective",
    "shoulders",
]
