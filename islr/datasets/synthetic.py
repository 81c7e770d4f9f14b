"""Synthetic signs: landmark sequences that look like a person signing, for tests and demos.

Nothing here is real sign language. A *vocabulary* of sign specs (hand paths, hand shapes, palm
orientations, one- or two-handedness, mouth and eyebrow activity) is drawn from a seed; *signers*
differ in body size, framing, speed and handedness; every sample varies timing, amplitude and
noise, has rest frames before and after, and loses hands when they leave the frame or the
"detector" misses them (NaN). Output is the ``holistic136`` layout in MediaPipe's conventions:
x, y normalised to the image, y down, z small relative depth; left/right are the signer's.

Classes come in pairs that share a path but differ in hand shape or orientation, so a model has to
look at the fingers as well as the wrists. Sequence length never depends on the class.

Geometry is built in *body units* (1 = shoulder width), origin between the shoulders, X to the
image right (the signer's left), Y down, Z towards the camera negative, then mapped into the image.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from islr.landmarks.layouts import FACE_SIGNING_61, HOLISTIC136
from islr.landmarks.sequence import LandmarkSequence

GENERATOR_VERSION = "1"
EXTRACTOR = f"islr-synthetic {GENERATOR_VERSION}"
FPS = 30.0
MIN_FRAMES, MAX_FRAMES = 40, 90

# ---- hand model (right hand, canonical: fingers up (-y), thumb to +x, palm facing the camera) --
HAND_LENGTH = 0.5  # wrist to middle fingertip, in shoulder widths
# knuckle (MCP) positions and resting spread angle (radians, + towards the thumb) per finger
_FINGER_BASES = np.array([[0.11, -0.44], [0.0, -0.47], [-0.09, -0.44], [-0.17, -0.39]])
_FINGER_SPREAD = np.array([0.16, 0.0, -0.13, -0.28])
_FINGER_SEGMENTS = np.array(
    [[0.22, 0.14, 0.10], [0.25, 0.16, 0.11], [0.23, 0.15, 0.10], [0.17, 0.11, 0.09]]
)
# cumulative flexion of the MCP, PIP and DIP joints of a fully curled finger
_FINGER_FLEX = np.cumsum([1.5, 1.75, 1.1])
_THUMB_CMC = np.array([0.09, -0.08, 0.0])
_THUMB_SEGMENTS = np.array([0.17, 0.13, 0.11])
_THUMB_OPEN = np.array([0.78, -0.6, -0.15])
_THUMB_OPPOSED = np.array([-0.35, -0.55, -0.75])
_THUMB_FLEX = np.array([0.15, 0.55, 1.0])

# Hand shapes: curl of thumb, index, middle, ring, pinky (0 straight .. 1 fist) and spread (0..1).
HAND_SHAPES: dict[str, tuple[float, float, float, float, float, float]] = {
    "flat": (0.15, 0.0, 0.0, 0.0, 0.0, 0.1),
    "open": (0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    "fist": (0.35, 1.0, 1.0, 1.0, 1.0, 0.2),
    "closed": (0.85, 1.0, 1.0, 1.0, 1.0, 0.2),
    "point": (0.85, 0.0, 1.0, 1.0, 1.0, 0.3),
    "v": (0.85, 0.0, 0.0, 1.0, 1.0, 1.0),
    "w": (0.85, 0.0, 0.0, 0.0, 1.0, 0.9),
    "y": (0.0, 1.0, 1.0, 1.0, 0.0, 1.0),
    "l": (0.0, 0.0, 1.0, 1.0, 1.0, 0.6),
    "i": (0.85, 1.0, 1.0, 1.0, 0.0, 0.5),
    "c": (0.35, 0.45, 0.45, 0.45, 0.45, 0.2),
    "o": (0.7, 0.62, 0.62, 0.62, 0.62, 0.1),
    "claw": (0.25, 0.55, 0.55, 0.55, 0.55, 1.0),
    "thumb": (0.0, 1.0, 1.0, 1.0, 1.0, 0.2),
    "bent": (0.1, 0.35, 0.35, 0.35, 0.35, 0.0),
}
_SHAPE_NAMES = tuple(HAND_SHAPES)
_RELAXED = np.array([0.3, 0.3, 0.35, 0.4, 0.45, 0.3])

# ---- body template (body units) --------------------------------------------------------------
_POSE_BODY = {
    # index: (X, Y) -- the signer's left is +X (image right)
    11: (0.5, 0.0), 12: (-0.5, 0.0),
    23: (0.33, 1.45), 24: (-0.33, 1.45),
    25: (0.34, 2.45), 26: (-0.34, 2.45),
    27: (0.33, 3.35), 28: (-0.33, 3.35),
    29: (0.33, 3.45), 30: (-0.33, 3.45),
    31: (0.36, 3.52), 32: (-0.36, 3.52),
}  # fmt: skip
_HEAD_Y = -0.68  # nose tip below the shoulder line (negative = above)
_POSE_HEAD = {
    0: (0.0, 0.0, -0.12), 1: (0.05, -0.09, -0.08), 2: (0.09, -0.09, -0.07),
    3: (0.13, -0.09, -0.06), 4: (-0.05, -0.09, -0.08), 5: (-0.09, -0.09, -0.07),
    6: (-0.13, -0.09, -0.06), 7: (0.2, -0.05, 0.02), 8: (-0.2, -0.05, 0.02),
    9: (0.065, 0.14, -0.08), 10: (-0.065, 0.14, -0.08),
}  # fmt: skip
_UPPER_ARM, _FOREARM = 0.72, 0.68

# Face mesh points (relative to the nose tip), keyed by MediaPipe index. Lips are placed along
# the contour by a parameter t in [-1, 1] from the signer's right mouth corner to the left one.
_LIPS_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409]
_LIPS_OUTER_LOWER = [146, 91, 181, 84, 17, 314, 405, 321, 375]
_LIPS_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415]
_LIPS_INNER_LOWER = [95, 88, 178, 87, 14, 317, 402, 318, 324]
_MOUTH_Y = 0.14


def _face_template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neutral face (61, 3), and per-point weights for mouth opening and eyebrow raising."""
    pts: dict[int, tuple[float, float, float]] = {}
    for idx_list, t_values, width, lift in (
        (_LIPS_OUTER_UPPER, np.linspace(-1, 0.8, 10), 0.07, -0.018),
        (_LIPS_OUTER_LOWER, np.linspace(-0.8, 0.8, 9), 0.07, 0.022),
        (_LIPS_INNER_UPPER, np.linspace(-1, 0.8, 10), 0.055, -0.004),
        (_LIPS_INNER_LOWER, np.linspace(-0.8, 0.8, 9), 0.055, 0.004),
    ):
        for idx, t in zip(idx_list, t_values, strict=True):
            pts[idx] = (t * width, _MOUTH_Y + lift * (1 - t * t), -0.05 - 0.01 * (1 - t * t))
    pts[291] = (0.07, _MOUTH_Y, -0.04)
    pts[308] = (0.055, _MOUTH_Y, -0.045)
    for idx_list, sign in (([70, 63, 105, 66, 107], -1), ([300, 293, 334, 296, 336], 1)):
        for k, idx in enumerate(idx_list):
            x = 0.17 - 0.03 * k
            pts[idx] = (sign * x, -0.2 - 0.025 * math.sin(math.pi * (k + 0.5) / 5), -0.04)
    for (outer, inner, upper, lower), sign in (
        ((33, 133, 159, 145), -1),
        ((263, 362, 386, 374), 1),
    ):
        pts[outer] = (sign * 0.15, -0.1, -0.01)
        pts[inner] = (sign * 0.05, -0.1, -0.03)
        pts[upper] = (sign * 0.1, -0.118, -0.03)
        pts[lower] = (sign * 0.1, -0.088, -0.03)
    pts[1] = (0.0, 0.0, -0.12)
    pts[4] = (0.0, 0.02, -0.1)
    pts[168] = (0.0, -0.12, -0.05)
    template = np.array([pts[i] for i in FACE_SIGNING_61], dtype=np.float64)
    lower_lip = set(_LIPS_OUTER_LOWER + _LIPS_INNER_LOWER)
    mouth_w = np.array([1.0 if i in lower_lip else 0.0 for i in FACE_SIGNING_61])
    brows = {70, 63, 105, 66, 107, 300, 293, 334, 296, 336}
    brow_w = np.array(
        [1.0 if i in brows else (0.3 if i in (159, 386) else 0.0) for i in FACE_SIGNING_61]
    )
    return template, mouth_w, brow_w


_FACE, _FACE_MOUTH_W, _FACE_BROW_W = _face_template()


# ---- specs -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SignSpec:
    """One synthetic sign class. Positions are body units on the *dominant* side (x > 0 = towards
    the dominant hand's own side), y down from the shoulder line, z forward negative."""

    class_index: int
    label: str
    hands: str  # "one", "mirror", "alternate" or "base"
    path: np.ndarray  # (K, 3) control points of the dominant wrist
    shapes: np.ndarray  # (S, 6) dominant hand-shape keys (5 curls + spread), S = 1 or 2
    orientations: np.ndarray  # (S, 3) roll, yaw, pitch (radians) at each shape key
    shape_change_at: float  # fraction of the sign where the shape changes (if S == 2)
    osc_kind: str  # "none", "circle" or "shake"
    osc_cycles: float
    osc_amp: float
    osc_dir: np.ndarray  # (2,) direction of a shake
    base_pos: np.ndarray  # (3,) non-dominant hand position for "base" signs
    base_shape: np.ndarray  # (6,)
    base_orientation: np.ndarray  # (3,)
    mouth_amp: float
    mouth_cycles: float
    brow_raise: float


@dataclass(frozen=True)
class SignerSpec:
    """How one synthetic person looks and moves."""

    signer_id: int
    left_handed: bool
    centre: tuple[float, float]  # shoulder midpoint in the image (x, y)
    scale: float  # shoulder width as a fraction of the image height
    aspect: float  # image width / height
    speed: float
    proportions: tuple[float, float, float]  # hip width, head size, hand size factors
    style_offset: tuple[float, float, float]  # this signer's habitual shift of hand positions
    sway: float
    dropout: float  # chance per frame that a visible hand starts being missed


def _shape(name: str) -> np.ndarray:
    return np.array(HAND_SHAPES[name], dtype=np.float64)


def make_sign_spec(class_index: int, seed: int = 0, label: str | None = None) -> SignSpec:
    """The spec of class ``class_index``; the same for every vocabulary size drawn from ``seed``.

    Classes ``2k`` and ``2k + 1`` share a movement family (hands, path, repetition) and differ in
    hand shape, orientation or facial activity, so wrists alone do not separate them.
    """
    family = np.random.default_rng([seed, 101, class_index // 2])
    own = np.random.default_rng([seed, 102, class_index])
    hands = str(family.choice(["one", "one", "mirror", "alternate", "base"]))
    k = int(family.integers(2, 5))
    base_pos = np.array([family.uniform(-0.45, -0.15), family.uniform(0.35, 0.75), -0.35])
    if hands == "base":  # the dominant hand acts on / around the other hand
        path = base_pos + np.column_stack(
            [
                family.uniform(0.05, 0.45, k),
                family.uniform(-0.35, 0.1, k),
                family.uniform(-0.15, 0.05, k),
            ]
        )
    else:
        region = family.integers(0, 3)  # face, chest, neutral space
        centre = [(0.15, -0.6), (0.15, 0.35), (0.45, 0.5)][int(region)]
        path = np.column_stack(
            [
                centre[0] + family.uniform(-0.35, 0.4, k),
                centre[1] + family.uniform(-0.35, 0.35, k),
                family.uniform(-0.6, -0.15, k),
            ]
        )
    osc_kind = str(family.choice(["none", "none", "circle", "shake"]))
    osc_cycles = float(family.uniform(1.0, 3.0))
    osc_amp = float(family.uniform(0.06, 0.16))
    angle = family.uniform(0, math.pi)
    osc_dir = np.array([math.cos(angle), math.sin(angle)])

    n_keys = int(own.integers(1, 3))
    names = own.choice(_SHAPE_NAMES, size=n_keys, replace=False)
    shapes = np.stack([_shape(str(n)) for n in names])
    roll_choices = np.array([0.0, 0.5, 1.2, -0.4, 1.57])
    orientations = np.column_stack(
        [
            own.choice(roll_choices, n_keys) + own.normal(0, 0.1, n_keys),
            own.choice([0.0, 0.9, 1.6, 2.6], n_keys) + own.normal(0, 0.1, n_keys),
            own.uniform(-0.5, 0.5, n_keys),
        ]
    )
    base_name = str(own.choice(["flat", "fist", "flat", "c", "open"]))
    return SignSpec(
        class_index=class_index,
        label=label if label is not None else f"synthetic-{class_index:02d}",
        hands=hands,
        path=path,
        shapes=shapes,
        orientations=orientations,
        shape_change_at=float(own.uniform(0.35, 0.65)),
        osc_kind=osc_kind,
        osc_cycles=osc_cycles,
        osc_amp=osc_amp,
        osc_dir=osc_dir,
        base_pos=base_pos,
        base_shape=_shape(base_name),
        base_orientation=np.array([1.4, own.choice([0.3, 1.6]), 0.2]),
        mouth_amp=float(own.choice([0.0, 0.0, 0.3, 0.8])),
        mouth_cycles=float(own.uniform(1.0, 3.0)),
        brow_raise=float(own.choice([0.0, 0.0, 1.0])),
    )


def make_vocabulary(n_classes: int, seed: int = 0) -> list[SignSpec]:
    """``n_classes`` sign specs; the first k are the same for any ``n_classes >= k``."""
    width = max(2, len(str(n_classes - 1)))
    return [make_sign_spec(c, seed, label=f"synthetic-{c:0{width}d}") for c in range(n_classes)]


def make_signer(signer_id: int, seed: int = 0) -> SignerSpec:
    """A synthetic person: framing, body proportions, speed, handedness (about 1 in 5 left)."""
    rng = np.random.default_rng([seed, 201, signer_id])
    return SignerSpec(
        signer_id=signer_id,
        left_handed=bool(rng.random() < 0.2),
        centre=(float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.42, 0.58))),
        scale=float(rng.uniform(0.2, 0.34)),
        aspect=float(rng.choice([16 / 9, 4 / 3, 1.0])),
        speed=float(rng.uniform(0.8, 1.25)),
        proportions=tuple(float(v) for v in rng.uniform(0.9, 1.1, 3)),
        style_offset=tuple(float(v) for v in rng.normal(0, 0.05, 3)),
        sway=float(rng.uniform(0.005, 0.03)),
        dropout=float(rng.uniform(0.01, 0.05)),
    )


# ---- geometry ----------------------------------------------------------------------------------
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _interp_keys(keys: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Ease through ``keys`` (K, D) for progress ``u`` (T,) in [0, 1]: (T, D), pausing at keys."""
    if len(keys) == 1:
        return np.repeat(keys, len(u), axis=0)
    pos = np.clip(u, 0, 1) * (len(keys) - 1)
    i = np.minimum(pos.astype(int), len(keys) - 2)
    f = _smoothstep(pos - i)[:, None]
    return keys[i] * (1 - f) + keys[i + 1] * f


def _rotations(angles: np.ndarray) -> np.ndarray:
    """(T, 3) roll (image plane), yaw (about the finger axis), pitch -> (T, 3, 3)."""
    roll, yaw, pitch = angles[:, 0], angles[:, 1], angles[:, 2]
    c, s = np.cos(roll), np.sin(roll)
    zeros, ones = np.zeros_like(roll), np.ones_like(roll)
    rz = np.stack([c, -s, zeros, s, c, zeros, zeros, zeros, ones], -1).reshape(-1, 3, 3)
    c, s = np.cos(yaw), np.sin(yaw)
    ry = np.stack([c, zeros, s, zeros, ones, zeros, -s, zeros, c], -1).reshape(-1, 3, 3)
    c, s = np.cos(pitch), np.sin(pitch)
    rx = np.stack([ones, zeros, zeros, zeros, c, -s, zeros, s, c], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def hand_points(shape: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """21 MediaPipe hand points of a right hand, wrist at the origin, in hand lengths.

    ``shape`` (T, 6): thumb..pinky curl and spread; ``angles`` (T, 3): roll, yaw, pitch.
    Returns (T, 21, 3) in image orientation (y down, z towards the camera negative).
    """
    t = len(shape)
    out = np.zeros((t, 21, 3))
    palm = np.array([0.0, 0.0, -1.0])  # fingers flex towards the palm, which faces the camera
    spread = 0.35 + shape[:, 5:6]  # (T, 1)
    alpha = _FINGER_SPREAD[None, :] * spread  # (T, 4)
    straight = np.stack([np.sin(alpha), -np.cos(alpha), np.zeros_like(alpha)], -1)  # (T, 4, 3)
    joint = np.zeros((t, 4, 3))
    joint[..., :2] = _FINGER_BASES
    out[:, 5::4] = joint
    for k in range(3):
        theta = (shape[:, 1:5] * _FINGER_FLEX[k])[..., None]
        direction = np.cos(theta) * straight + np.sin(theta) * palm
        joint = joint + _FINGER_SEGMENTS[None, :, k, None] * direction
        out[:, 6 + k :: 4][:, :4] = joint
    curl = shape[:, 0:1]
    base_dir = _unit(_THUMB_OPEN * (1 - curl) + _THUMB_OPPOSED * curl)  # (T, 3)
    bend = np.array([-0.6, 0.0, -0.8])
    bend = _unit(bend - (base_dir @ bend)[:, None] * base_dir)
    joint = np.broadcast_to(_THUMB_CMC, (t, 3)).copy()
    out[:, 1] = joint
    for k in range(3):
        theta = curl * _THUMB_FLEX[k]
        joint = joint + _THUMB_SEGMENTS[k] * (np.cos(theta) * base_dir + np.sin(theta) * bend)
        out[:, 2 + k] = joint
    return np.einsum("tij,tpj->tpi", _rotations(angles), out)


def _elbows(shoulder: np.ndarray, wrist: np.ndarray, outward: float) -> np.ndarray:
    """Elbow positions (T, 3) of a two-link arm in 3-D, hanging down and a little outwards."""
    d_vec = wrist - shoulder
    d = np.maximum(np.linalg.norm(d_vec, axis=1, keepdims=True), 1e-6)
    reach = np.minimum(d, _UPPER_ARM + _FOREARM - 1e-3)
    a = (_UPPER_ARM**2 - _FOREARM**2 + reach**2) / (2 * reach)
    h = np.sqrt(np.maximum(_UPPER_ARM**2 - a**2, 0.0))
    along = d_vec / d
    # the elbow lies on a circle around the shoulder-wrist axis; take its lowest, outer point
    prefer = np.array([0.45 * outward, 1.0, 0.25])
    down = prefer - (along @ prefer)[:, None] * along
    down = down / np.maximum(np.linalg.norm(down, axis=1, keepdims=True), 1e-6)
    return shoulder + along * a + down * h


def _missing_runs(visible: np.ndarray, start_p: float, rng: np.random.Generator) -> np.ndarray:
    """Frames where a visible hand is still missed: short bursts, as a detector does."""
    t = len(visible)
    missed = np.zeros(t, dtype=bool)
    starts = rng.random(t) < start_p
    lengths = rng.integers(1, 6, t)
    for i in np.flatnonzero(starts):
        missed[i : i + lengths[i]] = True
    return missed & visible


def generate_sign(
    sign: SignSpec, signer: SignerSpec, rng: np.random.Generator, noise: float = 1.0
) -> LandmarkSequence:
    """One performance of ``sign`` by ``signer``: a ``holistic136`` LandmarkSequence at 30 fps."""
    speed = signer.speed * rng.uniform(0.85, 1.15)
    n_pre, n_post = (int(v) for v in rng.integers(2, 9, 2))
    n_up, n_down = (max(3, round(v / speed)) for v in rng.uniform(5, 9, 2))
    others = n_pre + n_post + n_up + n_down
    n_core = round(rng.uniform(28, 60) / speed)
    n_core = int(np.clip(n_core, MIN_FRAMES - others, MAX_FRAMES - others))
    t_total = others + n_core

    # progress u through the sign (0 before, 1 after) and how far from rest w the hands are
    warp = rng.uniform(-0.12, 0.12)
    core_u = np.linspace(0, 1, n_core)
    core_u = core_u + warp * np.sin(math.pi * core_u)
    u = np.concatenate([np.zeros(n_pre + n_up), core_u, np.ones(n_down + n_post)])
    w = np.concatenate(
        [
            np.zeros(n_pre),
            _smoothstep(np.arange(1, n_up + 1) / (n_up + 1)),
            np.ones(n_core),
            _smoothstep(1 - np.arange(1, n_down + 1) / (n_down + 1)),
            np.zeros(n_post),
        ]
    )[:, None]

    # dominant hand: the class path, varied per sample and per signer
    path = sign.path.copy()
    centroid = path.mean(axis=0)
    path = centroid + (path - centroid) * rng.uniform(0.8, 1.2)
    path += rng.normal(0, 0.07, path.shape) + rng.normal(0, 0.05, 3)
    path += np.array(signer.style_offset)
    dom = _interp_keys(path, u)
    if sign.osc_kind != "none":
        phase = 2 * math.pi * sign.osc_cycles * rng.uniform(0.9, 1.1) * u
        env = _smoothstep(u / 0.15) * _smoothstep((1 - u) / 0.15)
        amp = sign.osc_amp * rng.uniform(0.75, 1.25) * env
        if sign.osc_kind == "circle":
            dom[:, 0] += amp * np.cos(phase)
            dom[:, 1] += amp * np.sin(phase)
        else:
            dom[:, :2] += (amp * np.sin(phase))[:, None] * sign.osc_dir
    rest = np.array([0.55, 1.75, 0.0])
    dom = rest * (1 - w) + dom * w

    key_u = (
        np.array([0.0])
        if len(sign.shapes) == 1
        else np.array([0.0, sign.shape_change_at + rng.uniform(-0.1, 0.1)])
    )
    shape_u = np.clip(u, 0, 1)
    step = (
        _smoothstep((shape_u[:, None] - key_u[None, 1:]) / 0.15 + 0.5) if len(key_u) > 1 else None
    )
    shapes = np.clip(sign.shapes + rng.normal(0, 0.06, sign.shapes.shape), 0, 1)
    orients = sign.orientations + rng.normal(0, 0.12, sign.orientations.shape)
    if step is None:
        dom_shape = np.repeat(shapes, t_total, axis=0)
        dom_orient = np.repeat(orients, t_total, axis=0)
    else:
        dom_shape = shapes[0] * (1 - step) + shapes[1] * step
        dom_orient = orients[0] * (1 - step) + orients[1] * step
    rest_orient = np.array([math.pi, 0.3, 0.0])
    dom_shape = _RELAXED * (1 - w) + dom_shape * w
    dom_orient = rest_orient * (1 - w) + dom_orient * w

    # non-dominant hand
    non_rest = np.array([0.55, 1.75, 0.0]) + rng.normal(0, 0.03, 3)
    if sign.hands == "one":
        non = np.repeat(non_rest[None], t_total, axis=0)
        non_w = np.zeros_like(w)
        non_shape_active = np.repeat(_RELAXED[None], t_total, axis=0)
        non_orient_active = np.repeat(rest_orient[None], t_total, axis=0)
    elif sign.hands == "base":
        non = np.repeat((sign.base_pos + rng.normal(0, 0.05, 3))[None], t_total, axis=0)
        non_w = w
        non_shape_active = np.repeat(sign.base_shape[None], t_total, axis=0)
        non_orient_active = np.repeat(sign.base_orientation[None], t_total, axis=0)
    else:
        non = dom.copy()
        if sign.hands == "alternate" and sign.osc_kind != "none":
            non = _interp_keys(path, u)
            phase = 2 * math.pi * sign.osc_cycles * u + math.pi
            non[:, :2] += (sign.osc_amp * np.sin(phase))[:, None] * sign.osc_dir[::-1]
        elif sign.hands == "alternate":
            non = _interp_keys(path[::-1], u)
        non = non + rng.normal(0, 0.04, 3)
        non_w = w
        non_shape_active = dom_shape
        non_orient_active = dom_orient
    non = non_rest * (1 - non_w) + non * non_w
    non_shape = _RELAXED * (1 - non_w) + non_shape_active * non_w
    non_orient = rest_orient * (1 - non_w) + non_orient_active * non_w

    hip_w, head_size, hand_size = signer.proportions
    hand_len = HAND_LENGTH * hand_size
    dom_pts = hand_points(dom_shape, dom_orient) * hand_len
    non_pts = hand_points(non_shape, non_orient) * hand_len
    # Physical placement for a right-handed signer: the dominant (right) hand is on the image
    # left (X < 0). A left hand is the mirror image of a right hand.
    mirror = np.array([-1.0, 1.0, 1.0])
    right_wrist, left_wrist = dom * mirror, non.copy()
    right_pts, left_pts = dom_pts, non_pts * mirror
    if signer.left_handed:
        right_wrist, left_wrist = non * mirror, dom.copy()
        right_pts, left_pts = non_pts, dom_pts * mirror

    # body: sway, breathing, head motion
    time = np.arange(t_total) / FPS
    sway = signer.sway * np.sin(2 * math.pi * rng.uniform(0.2, 0.5) * time + rng.uniform(0, 6.3))
    breath = 0.01 * np.sin(2 * math.pi * rng.uniform(0.2, 0.35) * time + rng.uniform(0, 6.3))
    nod = 0.02 * np.sin(2 * math.pi * rng.uniform(0.3, 0.8) * time + rng.uniform(0, 6.3))
    body_shift = np.column_stack([sway, breath, np.zeros(t_total)])  # (T, 3)

    pose = np.zeros((t_total, 33, 3))
    for idx, (x, y) in _POSE_BODY.items():
        x_scaled = x * hip_w if idx >= 23 else x
        pose[:, idx, 0] = x_scaled
        pose[:, idx, 1] = y
    pose[:, 11:13, 1] += breath[:, None]
    head = np.column_stack([sway * 0.5, _HEAD_Y + nod * 0.3, np.zeros(t_total)])
    for idx, (x, y, z) in _POSE_HEAD.items():
        pose[:, idx] = head + np.array([x, y, z]) * head_size
    pose[:, 11:13, 2] = [0.05, 0.05]
    right_hand = right_wrist[:, None] + right_pts
    left_hand = left_wrist[:, None] + left_pts
    pose[:, 16] = right_wrist
    pose[:, 15] = left_wrist
    for wrist_idx, elbow_idx, shoulder_idx, outward in ((15, 13, 11, 1.0), (16, 14, 12, -1.0)):
        pose[:, elbow_idx] = _elbows(pose[:, shoulder_idx], pose[:, wrist_idx], outward)
    for hand, (pinky, index, thumb) in ((left_hand, (17, 19, 21)), (right_hand, (18, 20, 22))):
        pose[:, pinky] = hand[:, 17] + 0.3 * (hand[:, 18] - hand[:, 17])
        pose[:, index] = hand[:, 5] + 0.3 * (hand[:, 6] - hand[:, 5])
        pose[:, thumb] = hand[:, 2]
    pose += body_shift[:, None]

    # face: mouth movement and eyebrows follow the sign's activity
    mouth = sign.mouth_amp * np.maximum(0, np.sin(math.pi * sign.mouth_cycles * u)) * w[:, 0]
    mouth = mouth + np.abs(rng.normal(0, 0.05, t_total))
    brow = sign.brow_raise * w[:, 0] * rng.uniform(0.7, 1.3)
    face = np.broadcast_to(_FACE, (t_total, 61, 3)).copy()
    face[:, :, 1] += 0.035 * mouth[:, None] * _FACE_MOUTH_W - 0.03 * brow[:, None] * _FACE_BROW_W
    face = face * head_size + head[:, None] + body_shift[:, None]

    # hands move with the body too
    right_hand = right_hand + body_shift[:, None]
    left_hand = left_hand + body_shift[:, None]

    # into the image: body units -> normalised image coordinates
    body = np.concatenate([left_hand, right_hand, pose, face], axis=1)  # holistic136 order
    scale = signer.scale
    cx, cy = signer.centre
    img = np.empty_like(body)
    img[..., 0] = cx + body[..., 0] * scale / signer.aspect
    img[..., 1] = cy + body[..., 1] * scale
    img[..., 2] = body[..., 2] * scale / signer.aspect
    # MediaPipe reports hand z relative to the wrist, face z relative to the face centre
    for sl in (slice(0, 21), slice(21, 42)):
        img[:, sl, 2] -= img[:, sl.start : sl.start + 1, 2]
    img[:, 75:, 2] -= img[:, 75:, 2].mean(axis=1, keepdims=True)
    img += rng.normal(0, 0.0025 * noise, img.shape)

    # detection: a hand mostly out of frame is lost; a visible one is missed now and then
    for sl in (slice(0, 21), slice(21, 42)):
        xy = img[:, sl, :2]
        inside = ((xy >= 0) & (xy <= 1)).all(axis=2).mean(axis=1) > 0.6
        missed = _missing_runs(inside, signer.dropout * noise, rng)
        img[~inside | missed, sl] = np.nan
    face_missed = _missing_runs(np.ones(t_total, dtype=bool), 0.005 * noise, rng)
    img[face_missed, 75:] = np.nan

    return LandmarkSequence(
        data=img.astype(np.float32),
        layout=HOLISTIC136.name,
        fps=FPS,
        source=f"synthetic:{sign.label}",
        extractor=EXTRACTOR,
        extra={"synthetic": True, "signer": signer.signer_id, "class_index": sign.class_index},
    )


# ---- writing a cache ---------------------------------------------------------------------------
@dataclass
class SyntheticSummary:
    """What :func:`write_synthetic_cache` wrote."""

    out: Path
    n_samples: int
    labels: list[str]
    splits: dict[str, int]
    train_signers: list[int]
    val_signers: list[int]
    left_handed_signers: list[int] = field(default_factory=list)


def signer_for_sample(class_index: int, k: int, n_signers: int) -> int:
    """Round-robin signers, offset per class so that every signer performs every sign."""
    return (k + class_index) % n_signers


def write_synthetic_cache(
    out: str | Path,
    n_classes: int = 20,
    per_class: int = 15,
    seed: int = 0,
    n_signers: int = 6,
    val_signers: int = 2,
    overwrite: bool = False,
    noise: float = 1.0,
    on_sample: Callable[[int, int], None] | None = None,
) -> SyntheticSummary:
    """Write a synthetic landmark cache; the last ``val_signers`` signers form the val split.

    Deterministic: the same arguments give byte-identical sample arrays. Refuses to write into a
    cache that already holds samples unless ``overwrite`` (which drops those samples first).
    ``on_sample(done, total)`` is called after each sample (for progress bars).
    """
    from islr.errors import DatasetError
    from islr.landmarks.cache import CacheError, LandmarkCache, ManifestEntry

    if n_classes < 2:
        raise DatasetError(f"--classes must be at least 2, got {n_classes}")
    if per_class < 1:
        raise DatasetError(f"--per-class must be at least 1, got {per_class}")
    if n_signers < 1 or not 0 <= val_signers < n_signers:
        raise DatasetError(
            f"need 0 <= --val-signers < --signers, got {val_signers} of {n_signers} signers"
        )
    cache = LandmarkCache(out)
    vocabulary = make_vocabulary(n_classes, seed)
    signers = [make_signer(s, seed) for s in range(n_signers)]
    val_ids = set(range(n_signers - val_signers, n_signers))
    total = n_classes * per_class
    with cache.writer() as writer:
        old = cache.entries(check_files=False)
        if old and not overwrite:
            raise CacheError(
                f"{cache.root} already holds {len(old)} samples; choose an empty folder "
                "or pass --overwrite to replace them"
            )
        if old:
            for entry in old:
                (cache.root / entry.path).unlink(missing_ok=True)
            writer.rewrite([])
        jobs = (
            (sign, k, signers[signer_for_sample(sign.class_index, k, n_signers)])
            for sign in vocabulary
            for k in range(per_class)
        )

        def make_and_save(job: tuple[SignSpec, int, SignerSpec]) -> ManifestEntry:
            sign, k, signer = job
            seq = generate_sign(
                sign, signer, np.random.default_rng([seed, 301, sign.class_index, k]), noise=noise
            )
            sample_id = f"{sign.label}/s{signer.signer_id:02d}-{k:03d}"
            entry = ManifestEntry(
                id=sample_id,
                label=sign.label,
                label_raw=sign.label,
                split="val" if signer.signer_id in val_ids else "train",
                extra={"synthetic": True, "signer": signer.signer_id, "seed": seed},
            )
            return writer.write_sample(seq, entry)

        entries: list[ManifestEntry] = []
        # every sample has its own Generator, so threads keep the output deterministic; zlib and
        # fsync release the GIL, so they overlap the writes; the manifest keeps the job order
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for entry in pool.map(make_and_save, jobs):
                entries.append(entry)
                if on_sample is not None:
                    on_sample(len(entries), total)
        writer.append_entries(entries)
    splits: dict[str, int] = {}
    for e in entries:
        splits[e.split] = splits.get(e.split, 0) + 1
    return SyntheticSummary(
        out=cache.root,
        n_samples=len(entries),
        labels=[s.label for s in vocabulary],
        splits=splits,
        train_signers=sorted(set(range(n_signers)) - val_ids),
        val_signers=sorted(val_ids),
        left_handed_signers=[s.signer_id for s in signers if s.left_handed],
    )
