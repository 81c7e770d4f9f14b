"""Streaming segmentation: the pure state machine, and a synthetic stream of three signs."""

from __future__ import annotations

import numpy as np
import pytest

from islr.landmarks import get_layout
from islr.streaming import SegmentTracker, StreamConfig, StreamSegmenter, TrackerAction
from tests.test_inference_support import synthetic_labels, synthetic_run, synthetic_sign

LAYOUT = "hands_pose75"


def _frame(wrist_x: float | None, layout: str = LAYOUT) -> np.ndarray:
    """A hands_pose75 frame: shoulders 0.2 apart, the right hand's wrist at ``wrist_x``."""
    lay = get_layout(layout)
    frame = np.full((lay.n_points, 3), np.nan, dtype=np.float32)
    frame[lay.index("pose", 11)] = (0.6, 0.5, 0)
    frame[lay.index("pose", 12)] = (0.4, 0.5, 0)
    if wrist_x is not None:
        frame[lay.slice("right_hand")] = (wrist_x, 0.7, 0)
    return frame


def _constant(probs: list[float]):
    calls = []

    def classify(frames: np.ndarray) -> np.ndarray:
        calls.append(len(frames))
        return np.asarray(probs)

    return classify, calls


def _stream(segmenter: StreamSegmenter, frames: list[np.ndarray]) -> list[dict]:
    events = []
    for frame in frames:
        events += segmenter.push(frame)
    return events + segmenter.flush()


def _moving(n: int, start: float = 0.3) -> list[np.ndarray]:
    return [_frame(start + 0.2 * np.sin(i / 3)) for i in range(n)]


def test_absent_hands_give_no_events():
    classify, calls = _constant([1.0, 0.0])
    seg = StreamSegmenter(LAYOUT, ["x", "y"], classify)
    assert _stream(seg, [_frame(None)] * 90) == []
    assert calls == []


def test_one_sign_between_rests_gives_one_sign_event_with_times():
    classify, calls = _constant([0.1, 0.9])
    seg = StreamSegmenter(LAYOUT, ["x", "y"], classify, StreamConfig(fps=30))
    frames = [_frame(None)] * 30 + _moving(45) + [_frame(None)] * 30
    events = _stream(seg, frames)
    signs = [e for e in events if e["type"] == "sign"]
    assert len(signs) == 1
    assert signs[0]["label"] == "y" and signs[0]["prob"] == pytest.approx(0.9)
    # the first frame with a hand has no motion yet: the sign starts one frame later
    assert signs[0]["start"] == pytest.approx(31 / 30, abs=1e-3) and signs[0][
        "end"
    ] == pytest.approx(74 / 30, abs=1e-3)
    assert [e["type"] for e in events].count("partial") >= 5  # live top-k while signing
    assert events[-1]["type"] in ("sign", "rest")
    assert max(calls) <= 45  # trailing rest frames are not classified with the sign


def test_still_hands_are_rest_and_low_confidence_is_unknown_not_a_sign():
    classify, _ = _constant([0.4, 0.6])
    cfg = StreamConfig(threshold=0.7)
    seg = StreamSegmenter(LAYOUT, ["x", "y"], classify, cfg)
    events = _stream(seg, _moving(40) + [_frame(0.5)] * 60)
    assert not [e for e in events if e["type"] == "sign"]
    (unknown,) = [e for e in events if e["type"] == "unknown"]
    assert unknown["top"][0] == {"label": "y", "prob": 0.6} and unknown["end"] > unknown["start"]
    assert events[-1] == {"type": "rest"}  # then the still hands are rest


def test_endless_signing_is_cut_at_max_sign_seconds():
    classify, _ = _constant([0.0, 1.0])
    seg = StreamSegmenter(LAYOUT, ["x", "y"], classify, StreamConfig(max_sign_seconds=1.0))
    events = _stream(seg, _moving(150))  # 5 s of motion
    signs = [e for e in events if e["type"] == "sign"]
    assert len(signs) == 5
    assert all(s["end"] - s["start"] <= 1.0 + 2e-3 for s in signs)  # times rounded to ms


def test_reset_and_timestamps():
    classify, _ = _constant([0.0, 1.0])
    seg = StreamSegmenter(LAYOUT, ["x", "y"], classify)  # fps=30 for frames without a time
    frames = [_frame(None)] * 3 + _moving(20) + [_frame(None)] * 10
    events = []
    for i, frame in enumerate(frames):
        events += seg.push(frame, t=i * 0.1)  # 10 fps given as timestamps
    (sign,) = [e for e in events + seg.flush() if e["type"] == "sign"]
    # times follow the timestamps (frame 4 .. 22 at 10 fps), not the frame count at 30 fps
    assert (sign["start"], sign["end"]) == (pytest.approx(0.4), pytest.approx(2.2))
    # reset mid-sign: the open segment is dropped and frame-count time starts again at 0
    for frame in [_frame(None)] * 3 + _moving(20):
        seg.push(frame)
    seg.reset()
    assert seg.tracker.segment is None and seg.flush() == [] and seg.n_frames == 0
    events = _stream(seg, [_frame(None)] * 3 + _moving(20) + [_frame(None)] * 30)
    (sign,) = [e for e in events if e["type"] == "sign"]
    assert sign["start"] == pytest.approx(3 / 30, abs=1e-3) and sign["end"] < 1.0


def test_tracker_short_blip_is_noise():
    tracker = SegmentTracker(StreamConfig())
    summary = StreamSegmenter(LAYOUT, ["x"], lambda f: np.ones(1)).summarize
    actions = []
    frames = [_frame(None)] * 10 + _moving(4) + [_frame(None)] * 30
    for i, frame in enumerate(frames):
        actions.append(tracker.push(frame, summary(frame), i / 30))
    assert [a for a in actions if a and a.kind in ("final", "partial")] == []
    assert [a for a in actions if a] == [TrackerAction("rest")]  # one rest, not one per closing


def test_config_is_validated_and_round_trips_as_json():
    with pytest.raises(ValueError, match="threshold"):
        StreamConfig(threshold=1.5)
    with pytest.raises(ValueError, match="whole number"):
        StreamConfig.from_dict({"partial_every": 2.5})
    with pytest.raises(ValueError, match="a number"):
        StreamConfig.from_dict({"fps": "30"})
    cfg = StreamConfig(threshold=0.2, time_eps=0.0)
    assert StreamConfig.from_dict(cfg.to_dict()) == cfg
    # a later version's extra settings are ignored; missing ones take the defaults
    assert StreamConfig.from_dict({"threshold": 0.2, "time_eps": 0, "new": 1}) == cfg


def _rest_frames(last: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [last + rng.normal(0, 0.0005, last.shape).astype(np.float32) for _ in range(n)]


@pytest.mark.slow
def test_three_synthetic_signs_in_a_stream_give_exactly_those_three():
    from islr.inference import Engine

    engine = Engine.load(synthetic_run())
    labels = synthetic_labels()
    rng = np.random.default_rng(7)
    order = [2, 0, 1]
    signs = [synthetic_sign(pos, 500 + i, signer=4 + i % 2) for i, pos in enumerate(order)]
    frames: list[np.ndarray] = _rest_frames(signs[0].data[0], 30, rng)
    for i, seq in enumerate(signs):
        frames += list(seq.data)
        if i == 1:  # hands drop out of view between these two
            gap = seq.data[-1].copy()
            gap[:42] = np.nan
            frames += [gap] * 25
        else:  # hands held still at rest
            frames += _rest_frames(seq.data[-1], 30, rng)

    segmenter = StreamSegmenter(
        engine.layout, engine.labels, lambda f: engine.predict_batch([f])[0], StreamConfig()
    )
    events = _stream(segmenter, frames)
    found = [e["label"] for e in events if e["type"] == "sign"]
    assert found == [labels[pos] for pos in order], events


def test_sign_confidence_is_relative_to_the_known_signs_mass() -> None:
    from islr.streaming import sign_confidence

    assert sign_confidence(np.array([0.7, 0.2, 0.1]), 3) == pytest.approx(0.7)
    # an added sign (index 3) with half the mass: the known signs hold 0.5 -> 0.5 / 0.5 = 1
    assert sign_confidence(np.array([0.3, 0.1, 0.1, 0.5]), 3) == pytest.approx(1.0)
    # a known sign's confidence is the classifier's own probability, whatever signs were added
    assert sign_confidence(np.array([0.6, 0.1, 0.1, 0.2]), 3) == pytest.approx(0.75)


def test_unknown_event_when_the_model_is_not_sure_of_any_sign() -> None:
    """Threshold 0.6: a flat distribution (an out-of-vocabulary sign) is 'unknown'."""
    layout = get_layout("holistic136")
    flat = np.full(4, 0.25)
    seg = StreamSegmenter(layout, list("abcd"), lambda frames: flat, StreamConfig(threshold=0.6))
    events = seg._events(TrackerAction("final", [np.zeros((layout.n_points, 3))] * 10, 0.0, 1.0))
    assert [e["type"] for e in events] == ["unknown"]
    sure = np.array([0.9, 0.05, 0.03, 0.02])
    seg = StreamSegmenter(layout, list("abcd"), lambda frames: sure, StreamConfig(threshold=0.6))
    events = seg._events(TrackerAction("final", [np.zeros((layout.n_points, 3))] * 10, 0.0, 1.0))
    assert [(e["type"], e.get("label")) for e in events] == [("sign", "a")]
