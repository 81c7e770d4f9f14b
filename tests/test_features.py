import numpy as np
import pytest
from conftest import need_torch

from islr.features import (
    AugmentConfig,
    FeatureConfig,
    augment_sequence,
    mirror,
    mixup,
    prepare_model_input,
    resample,
    resample_indices,
)
from islr.features import augment as A
from islr.landmarks import HANDS_POSE75, HOLISTIC136, LandmarkSequence, get_layout
from islr.landmarks.layouts import mirror_permutation


def signer(t=30, layout="holistic136", seed=0, missing=True) -> np.ndarray:
    """A plausible (T, N, 3) sequence: points scattered around a body centre, some NaN."""
    rng = np.random.default_rng(seed)
    lay = get_layout(layout)
    data = (0.5 + 0.15 * rng.standard_normal((t, lay.n_points, 3))).astype(np.float32)
    data[:, lay.index("pose", 11), :2] = [0.6, 0.5]  # signer's left shoulder (image right)
    data[:, lay.index("pose", 12), :2] = [0.4, 0.5]
    if missing:
        data[3:7, lay.slice("left_hand")] = np.nan
        data[-1] = np.nan
    return data


def test_resample_indices_centre_aligned():
    assert resample_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert resample_indices(2, 4).tolist() == [0, 0, 1, 1]
    assert resample_indices(1, 3).tolist() == [0, 0, 0]
    assert resample(np.arange(100)[:, None], 60).shape == (60, 1)
    with pytest.raises(ValueError):
        resample_indices(0, 4)


def test_prepare_model_input_maps_layout_and_aspect():
    data = signer(layout="holistic136")
    seq = LandmarkSequence(data, "holistic136", extra={"image_width": 640, "image_height": 360})
    out = prepare_model_input(seq, "hands_pose75", 16)
    assert out.shape == (16, 75, 3) and out.dtype == np.float32
    src = data[resample_indices(30, 16)]
    pose = src[:, HOLISTIC136.slice("pose")]
    np.testing.assert_allclose(out[:, HANDS_POSE75.slice("pose"), 0], pose[..., 0])
    np.testing.assert_allclose(
        out[:, HANDS_POSE75.slice("pose"), 1], pose[..., 1] * 360 / 640, rtol=1e-6
    )


def test_mirror_twice_is_identity_and_swaps_hands():
    for layout in (HOLISTIC136, HANDS_POSE75):
        data = signer(layout=layout.name)
        once = mirror(data, layout)
        np.testing.assert_allclose(mirror(once, layout), data, atol=1e-6)
        left, right = layout.slice("left_hand"), layout.slice("right_hand")
        np.testing.assert_allclose(once[:, right, 1], data[:, left, 1])
        assert sorted(mirror_permutation(layout)) == list(range(layout.n_points))


@pytest.mark.parametrize(
    "fn",
    [
        lambda d, r: A.rotate(d, 10.0, np.array([0.5, 0.5], np.float32)),
        lambda d, r: A.scale(d, 1.2, 0.9, np.array([0.5, 0.5], np.float32)),
        lambda d, r: A.shear_shift(d, 0.1, -0.1, np.array([0.01, 0.02], np.float32), d[0, 0, :2]),
        lambda d, r: A.add_noise(d, 0.01, r),
        lambda d, r: A.time_warp(d, 1.5, 0.1, r),
        lambda d, r: A.temporal_shift(d, 3, -2),
        lambda d, r: A.temporal_mask(d, 2, 5),
        lambda d, r: A.drop_detections(d, slice(0, 21), r.random(d.shape[0]) < 0.5),
        lambda d, r: augment_sequence(d, "holistic136", AugmentConfig(), r),
    ],
)
def test_augmentations_keep_shape_and_nan(fn):
    data = signer()
    rng = np.random.default_rng(0)
    out = fn(data, rng)
    assert out.ndim == 3 and out.shape[1:] == data.shape[1:] and out.dtype == np.float32
    assert not np.isinf(out).any()
    if out.shape[0] == data.shape[0]:
        # nothing missing becomes present
        assert np.isnan(out[np.isnan(data)]).all()
    assert np.isfinite(out).any()


def test_rotation_keeps_distances():
    data = signer(missing=False)
    out = A.rotate(data, 30.0, np.array([0.5, 0.5], np.float32))
    d0 = np.linalg.norm(data[:, 0, :2] - data[:, 1, :2], axis=-1)
    d1 = np.linalg.norm(out[:, 0, :2] - out[:, 1, :2], axis=-1)
    np.testing.assert_allclose(d0, d1, rtol=1e-5)


def test_augment_all_missing_sequence_does_not_break():
    data = np.full((12, 136, 3), np.nan, np.float32)
    out = augment_sequence(
        data,
        "holistic136",
        AugmentConfig(p_mirror=1, p_rotate=1, p_scale=1),
        np.random.default_rng(0),
    )
    assert np.isnan(out).all()


def test_mixup_soft_targets():
    rng = np.random.default_rng(0)
    batch = np.stack([signer(seed=i) for i in range(4)])
    targets = np.eye(4, dtype=np.float32)
    mixed, soft = mixup(batch, targets, 0.4, rng)
    assert mixed.shape == batch.shape
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)


@pytest.fixture
def torch():
    """torch, or a skip on a core install; LandmarkPreprocessor is the in-model (torch) half."""
    return need_torch()


def test_preprocessor_outputs_finite_and_invariant_to_shift_and_scale(torch):
    from islr.features.preprocess import LandmarkPreprocessor

    cfg = FeatureConfig(seq_len=30)
    pre = LandmarkPreprocessor("holistic136", cfg)
    x = torch.from_numpy(signer(missing=True))[None]
    feats = pre(x)
    assert feats.shape == (1, 30, pre.n_features)
    assert torch.isfinite(feats).all()
    moved = x.clone()
    moved[..., :2] = moved[..., :2] * 1.7 + 0.2
    torch.testing.assert_close(pre(moved), feats, atol=1e-4, rtol=1e-4)


def test_upright_hand_shape_does_not_depend_on_how_the_hand_is_held(torch):
    """A hand turned about its wrist keeps its upright shape (and its knuckle points up); the
    wrist-relative shape turns with it; NaN frames stay zero."""
    from islr.features.preprocess import LandmarkPreprocessor
    from islr.landmarks.layouts import HAND_WRIST

    cfg = FeatureConfig(seq_len=30, hand_upright=True, motion=False, presence=False)
    pre = LandmarkPreprocessor("holistic136", cfg)
    plain = LandmarkPreprocessor("holistic136", FeatureConfig(seq_len=30, motion=False,
                                                              presence=False))  # fmt: skip
    assert pre.n_features == plain.n_features + 2 * 21 * 2
    x = torch.from_numpy(signer(missing=True))[None]
    layout = get_layout("holistic136")
    turned = x.clone()
    for hand in ("left_hand", "right_hand"):
        rows = [layout.index(hand, i) for i in range(21)]
        wrist = turned[:, :, layout.index(hand, HAND_WRIST), :2].unsqueeze(2)
        angle = torch.tensor(0.7)
        rot = torch.stack([torch.stack([angle.cos(), -angle.sin()]),
                           torch.stack([angle.sin(), angle.cos()])])  # fmt: skip
        turned[:, :, rows, :2] = (turned[:, :, rows, :2] - wrist) @ rot.T + wrist
    a, b = pre(x), pre(turned)
    assert torch.isfinite(a).all()
    n_body = plain.n_points * 2
    # per frame: the body points, then per hand 21 wrist-relative points and 21 upright ones
    upright = lambda f: torch.cat([f[..., n_body + 42 : n_body + 84], f[..., n_body + 126 :]], -1)  # noqa: E731
    rel = lambda f: f[..., n_body : n_body + 42]  # noqa: E731
    torch.testing.assert_close(upright(a), upright(b), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(rel(a), rel(b), atol=1e-2)
    knuckle = a[..., n_body + 42 + 9 * 2 : n_body + 42 + 9 * 2 + 2]  # left hand, point 9
    seen = knuckle.abs().sum(-1) > 0
    torch.testing.assert_close(knuckle[seen], torch.tensor([0.0, -1.0]).expand_as(knuckle[seen]),
                               atol=1e-4, rtol=0)  # fmt: skip


def test_preprocessor_handles_everything_missing_and_no_pose(torch):
    from islr.features.preprocess import LandmarkPreprocessor

    cfg = FeatureConfig(seq_len=8, points={"left_hand": "all", "right_hand": "all"})
    pre = LandmarkPreprocessor("holistic136", cfg)
    assert torch.isfinite(pre(torch.full((2, 8, 136, 3), float("nan")))).all()
    with pytest.raises(ValueError, match="features use .face.*does not store"):
        LandmarkPreprocessor("hands_pose75", FeatureConfig(points={"face": "all"}))


def test_augmentations_are_named_transforms_composed_from_a_list():
    cfg = AugmentConfig()
    steps = A.augmentation_steps(cfg)
    assert [s["name"] for s in steps] == [
        "mirror",
        "time_warp",
        "temporal_shift",
        "rotate",
        "scale",
        "shear_shift",
        "noise",
        "temporal_mask",
        "drop_hands",
    ]
    webcam = {"close_framing", "aspect_frame", "perspective", "drop_frames", "lose_fast_hands",
              "body_proportions"}  # fmt: skip
    assert set(A.TRANSFORMS) == {s["name"] for s in steps} | webcam | {"frame_rate"}
    every = AugmentConfig(**{f"p_{s}": 0.5 for s in webcam})
    assert {s["name"] for s in A.augmentation_steps(every)} - {s["name"] for s in steps} == webcam
    # the flat config and the list it stands for are one pipeline: same draws, same output
    data = signer()
    by_config = augment_sequence(data, "holistic136", cfg, np.random.default_rng(5))
    by_list = A.Compose.from_config(steps).apply(data, "holistic136", np.random.default_rng(5))
    np.testing.assert_array_equal(by_config, by_list)
    # a list of a few steps, with p = 1: each runs
    rotate_only = A.Compose.from_config([{"name": "rotate", "p": 1.0, "max_degrees": 30.0}])
    out = rotate_only.apply(data, "holistic136", np.random.default_rng(0))
    assert out.shape == data.shape and not np.array_equal(out, data, equal_nan=True)
    nothing = A.Compose.from_config([{"name": "rotate", "p": 0.0}])
    np.testing.assert_array_equal(
        nothing.apply(data, "holistic136", np.random.default_rng(0)), data
    )


def test_unknown_augmentation_or_parameter_is_a_config_error():
    from islr.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        A.Compose.from_config([{"name": "flip", "p": 0.5}])
    with pytest.raises(ConfigError, match="rotate"):
        A.Compose.from_config([{"name": "rotate", "p": 0.5, "degrees": 3}])


def test_robustness_perturbations_are_the_training_transforms():
    from islr.evaluation import PERTURBATIONS

    assert {type(t).name for t in PERTURBATIONS.values()} <= set(A.TRANSFORMS)
