"""Webcam conditions: each named perturbation does what its name says, on a made-up signer
filmed like INCLUDE (1920x1080, shoulders a quarter of the width, hands moving below them)."""

import numpy as np
import pytest

from islr.evaluation import PERTURBATIONS, WEBCAM, perturb_sequence
from islr.features import webcam as W
from islr.features.augment import Compose, mirror
from islr.features.model_input import aspect_corrected
from islr.landmarks import LandmarkSequence, get_layout

LAYOUT = get_layout("hands_pose75")
POSE = LAYOUT.slice("pose").start
LEFT, RIGHT = LAYOUT.slice("left_hand"), LAYOUT.slice("right_hand")


def _signer(frames: int = 40) -> LandmarkSequence:
    """Image-normalised x, y; shoulders at y 0.45, nose at 0.3, hands swinging from the waist
    to the chin, fastest in the middle of the clip."""
    data = np.full((frames, LAYOUT.n_points, 3), np.nan, dtype=np.float32)
    t = np.linspace(0, 1, frames)
    aspect = 1080 / 1920

    def put(mp, x, y):
        data[:, POSE + mp, 0], data[:, POSE + mp, 1] = x, y

    sw = 0.25  # width units
    put(11, 0.5 + sw / 2, 0.45)
    put(12, 0.5 - sw / 2, 0.45)
    put(0, 0.5, 0.3)
    put(7, 0.5 + 0.19 * sw, 0.29)
    put(8, 0.5 - 0.19 * sw, 0.29)
    put(13, 0.5 + 0.6 * sw, 0.65)
    put(14, 0.5 - 0.6 * sw, 0.65)
    height = 0.9 - 0.3 * (1 - np.cos(2 * np.pi * t))  # wrists from the waist to the chin, back
    for mp, rows, side in ((15, LEFT, 1), (16, RIGHT, -1)):
        x = 0.5 + side * 0.1
        put(mp, x, height)
        offsets = np.linspace(0, 0.03, 21)
        data[:, rows, 0] = x + offsets[None] * side
        data[:, rows, 1] = height[:, None] - offsets[None] / aspect
    extra = {"image_width": 1920, "image_height": 1080}
    return LandmarkSequence(data, "hands_pose75", extra=extra)


def _perturbed(name: str) -> np.ndarray:
    return perturb_sequence(_signer(), name, np.random.default_rng(0)).data


def test_the_webcam_suite_is_named_and_scorable():
    assert set(WEBCAM) <= set(PERTURBATIONS)
    for name in WEBCAM:
        out = _perturbed(name)
        assert out.shape[1:] == (LAYOUT.n_points, 3) and out.shape[0] >= 2
        assert np.isfinite(out[:, POSE + 11]).any()  # the signer is still there


def test_close_framing_puts_the_shoulders_at_the_bottom_edge():
    out = _perturbed("close-framing")
    height = 3 / 4  # a 4:3 frame in width units
    shoulders_y = out[:, [POSE + 11, POSE + 12], 1]
    assert np.allclose(shoulders_y, height, atol=0.01)
    # the hands are lost below the edge, seen only when raised into the frame
    wrist_y = aspect_corrected(_signer()).astype(float)[:, LEFT.start, 1]
    lost = np.isnan(out[:, LEFT.start, 0])
    assert lost.any() and (~lost).any()
    assert wrist_y[lost].min() > wrist_y[~lost].max()
    # a large head: the ears span a far larger share of the frame
    ears = lambda d: np.nanmedian(np.abs(d[:, POSE + 7, 0] - d[:, POSE + 8, 0]))  # noqa: E731
    assert ears(out) > 2.5 * ears(aspect_corrected(_signer()))
    assert np.isnan(out[:, POSE + 13]).all()  # the elbows are below the frame


@pytest.mark.parametrize("name, aspect", [("frame-4:3", 4 / 3), ("frame-1:1", 1.0),
                                          ("frame-9:16", 9 / 16)])  # fmt: skip
def test_aspect_frames_hold_everything_inside_a_frame_of_that_shape(name, aspect):
    out = _perturbed(name)
    xy = out[..., :2].reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(1)]
    m = W.POSE_MARGIN
    assert xy[:, 0].min() >= -m and xy[:, 0].max() <= 1 + m
    assert xy[:, 1].min() >= -m and xy[:, 1].max() <= 1 / aspect + m
    shoulder_width = np.nanmedian(out[:, POSE + 11, 0] - out[:, POSE + 12, 0])
    assert shoulder_width <= 1 / 2.4 + 1e-6  # the upper body fits the width


def test_camera_above_below_and_side_change_the_perspective():
    def widths(d):  # the top (ears) and bottom (elbows) of the body, shoulder-normalised
        sw = np.nanmedian(d[:, POSE + 11, 0] - d[:, POSE + 12, 0])
        top = np.nanmedian(d[:, POSE + 7, 0] - d[:, POSE + 8, 0])
        bottom = np.nanmedian(d[:, POSE + 13, 0] - d[:, POSE + 14, 0])
        return top / sw, bottom / sw

    top0, bottom0 = widths(aspect_corrected(_signer()))
    top_a, bottom_a = widths(_perturbed("camera-above"))
    top_b, bottom_b = widths(_perturbed("camera-below"))
    assert top_a > top0 and bottom_a < bottom0  # looking down: the head nearer, wider
    assert top_b < top0 and bottom_b > bottom0
    side = _perturbed("camera-side")
    drop = lambda d, mp: np.nanmedian(d[:, POSE + mp, 1] - d[:, POSE + 11, 1])  # noqa: E731
    # one side of the body nearer the camera: its upper arm looks longer
    assert (
        abs(drop(side, 13) - drop(side, 14))
        > 0.01
        > abs(drop(aspect_corrected(_signer()), 13) - drop(aspect_corrected(_signer()), 14))
    )


def test_frame_rate_dropped_frames_and_fast_hands():
    seq = _signer()
    assert _perturbed("fps-15").shape[0] == seq.data.shape[0] // 2
    dropped = _perturbed("dropped-frames")
    assert 0.6 * seq.data.shape[0] <= dropped.shape[0] < seq.data.shape[0]
    out = _perturbed("fast-hands-lost")
    wrist = aspect_corrected(seq)[:, LEFT.start, :2]
    speed = np.r_[np.nan, np.linalg.norm(np.diff(wrist, axis=0), axis=1)]
    lost = np.isnan(out[:, LEFT.start, 0])
    assert 0.2 <= lost.mean() <= 0.4
    assert np.nanmin(speed[lost]) >= np.nanmax(speed[~lost & np.isfinite(speed)])


def test_mirrored_selfie_is_the_left_handed_flip():
    corrected = aspect_corrected(_signer())
    assert np.allclose(_perturbed("mirror-selfie"), mirror(corrected, LAYOUT), equal_nan=True)


def test_webcam_conditions_compose_as_training_augmentations():
    steps = [{"name": "close_framing", "p": 0.5}, {"name": "aspect_frame", "p": 0.5},
             {"name": "perspective", "p": 0.5}, {"name": "drop_frames", "p": 0.5},
             {"name": "lose_fast_hands", "p": 0.5}]  # fmt: skip
    compose = Compose.from_config(steps)
    data = aspect_corrected(_signer())
    for seed in range(20):
        out = compose.apply(data, LAYOUT, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.shape[1:] == data.shape[1:]
        assert np.isfinite(out).any()


def test_body_proportions_lengthen_each_segment_by_its_factor():
    data = aspect_corrected(_signer())
    out = W.body_proportions(data, LAYOUT, 1.2, 1.1, 0.9, 1.25, 0.8)
    d = lambda x, a, b: np.nanmedian(np.linalg.norm(x[:, a, :2] - x[:, b, :2], axis=-1))  # noqa: E731
    p = lambda mp: POSE + mp  # noqa: E731
    assert d(out, p(11), p(12)) == pytest.approx(1.2 * d(data, p(11), p(12)), rel=1e-4)
    assert d(out, p(11), p(13)) == pytest.approx(1.1 * d(data, p(11), p(13)), rel=1e-4)
    assert d(out, p(13), p(15)) == pytest.approx(0.9 * d(data, p(13), p(15)), rel=1e-4)
    last = LEFT.start + 20  # a fingertip: the hand 1.25 times as long, about its wrist
    assert d(out, LEFT.start, last) == pytest.approx(1.25 * d(data, LEFT.start, last), rel=1e-4)
    assert d(out, p(7), p(8)) == pytest.approx(0.8 * d(data, p(7), p(8)), rel=1e-4)
    # the hand's wrist still sits on the pose wrist, wherever the arm put it
    np.testing.assert_allclose(out[:, LEFT.start, :2], out[:, p(15), :2], atol=1e-5)
