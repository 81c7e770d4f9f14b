"""The learned sign segmenter: stream synthesis, the causal tagger, the decoder, training."""

from __future__ import annotations

import numpy as np
import pytest

from islr.datasets.streams import (
    GAP_KINDS,
    TAG_B,
    TAG_I,
    TAG_O,
    StreamRecipe,
    build_stream,
    random_streams,
    sign_span,
)
from islr.datasets.synthetic import generate_sign, make_signer, make_vocabulary
from islr.evaluation.streams import align, segment_transcript, sign_error_rate
from islr.features.model_input import prepare_model_input
from islr.landmarks import get_layout
from islr.streaming import (
    FrameSummarizer,
    LearnedTracker,
    SegmentTracker,
    StreamConfig,
    TagDecoder,
)
from tests.conftest import need_torch

LAYOUT = "holistic136"


def synthetic_clips(n_classes: int, per_class: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    vocabulary = make_vocabulary(n_classes, seed)
    rng = np.random.default_rng(seed)
    clips = []
    for k in range(per_class):
        signer = make_signer(k % 3, seed)
        for sign in vocabulary:
            seq = generate_sign(sign, signer, rng)
            clips.append((sign.label, prepare_model_input(seq, LAYOUT, None, 2)))
    return clips


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray]]:
    return synthetic_clips(6, 3)


def test_sign_span_is_the_raised_part_of_a_clip(clips):
    for _, data in clips:
        start, end = sign_span(data, LAYOUT)
        assert 0 < start < end < len(data) - 1  # synthetic clips rest before and after


@pytest.mark.parametrize("gap", GAP_KINDS)
def test_streams_tag_each_sign_once_and_are_deterministic(clips, gap):
    recipe = StreamRecipe(augment=True)
    picks = clips[:3]
    a = build_stream(picks, LAYOUT, np.random.default_rng(4), recipe, [gap, gap])
    b = build_stream(picks, LAYOUT, np.random.default_rng(4), recipe, [gap, gap])
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.tags, b.tags)
    assert a.frames.shape[0] == a.tags.shape[0]
    assert [s.label for s in a.signs] == [c[0] for c in picks]
    starts = np.flatnonzero(a.tags == TAG_B)
    firsts = [i for i in starts if i == 0 or a.tags[i - 1] != TAG_B]
    assert firsts == [s.start for s in a.signs]  # one B run per sign, where it starts
    for s in a.signs:
        assert set(a.tags[s.start : s.end + 1]) <= {TAG_B, TAG_I}
        assert a.tags[s.end + 1] == TAG_O if s.end + 1 < len(a.tags) else True
    if gap == "no_hands":
        between = slice(a.signs[0].clip_end + 1, a.signs[1].clip_start)
        lay = get_layout(LAYOUT)
        for hand in ("left_hand", "right_hand"):
            assert np.isnan(a.frames[between][:, lay.slice(hand)]).all()


def _probs(tags: str) -> list[np.ndarray]:
    table = {"O": (1.0, 0.0, 0.0), "B": (0.0, 1.0, 0.0), "I": (0.0, 0.0, 1.0)}
    return [np.asarray(table[c]) for c in tags]


def _decode(tags: str, config: StreamConfig) -> list[tuple[str, float, float] | str]:
    decoder = TagDecoder(config)
    out = []
    for i, p in enumerate(_probs(tags)):
        action = decoder.push(np.full((2, 2), i, np.float32), p, i / 10)
        if action and action.kind == "final":
            first, last = float(action.frames[0][0, 0]), float(action.frames[-1][0, 0])
            out.append(("final", action.start, action.end, first, last))
        elif action:
            out.append(action.kind)
    action = decoder.flush()
    if action and action.kind == "final":
        out.append(("final-flush", action.start, action.end))
    return out


def test_decoder_splits_back_to_back_signs_at_each_begin():
    cfg = StreamConfig(min_sign_seconds=0.3, out_seconds=0.2, context_seconds=0.1, partial_every=99)
    out = _decode("OOBBIIIIBBIIIIIOOOO", cfg)
    # first sign 0.2..0.7 (frames 2-7; context frame 1 before it, none after: the next begins)
    assert out[0] == ("final", 0.2, 0.7, 1.0, 7.0)
    # second sign 0.8..1.4, closed after 0.2 s outside, with 0.1 s of context after it
    assert out[1] == ("final", 0.8, 1.4, 8.0, 15.0)
    assert out[2:] == ["rest"]


def test_decoder_ignores_short_blips_and_begins_inside_a_short_sign():
    cfg = StreamConfig(min_sign_seconds=0.3, out_seconds=0.2, context_seconds=0.0, partial_every=99)
    assert _decode("OOBIOOOOO", cfg) == ["rest"]  # 0.1 s: noise
    # a B 0.1 s into a sign does not split it (shorter than min_sign_seconds)
    assert _decode("OBIBIIIIOOO", cfg)[0] == ("final", 0.1, 0.7, 1.0, 7.0)
    assert _decode("OBIIIIII", cfg) == [("final-flush", 0.1, 0.7)]


def test_learned_tracker_tags_the_frame_lookahead_back():
    seen = []

    def tag(window: np.ndarray) -> np.ndarray:
        seen.append(float(window[-1, 0, 0]))
        return np.tile([0.0, 0.0, 1.0], (len(window), 1))

    tracker = LearnedTracker(tag, window=4, lookahead=2, config=StreamConfig(partial_every=99))
    for i in range(6):
        tracker.push(np.full((2, 2), i, np.float32), None, i / 10)
    assert seen == [2.0, 3.0, 4.0, 5.0]  # no tag before the lookahead is there
    action = tracker.flush()
    assert (action.kind, action.start, action.end) == ("final", 0.0, 0.3)  # frames 0..3 decoded


def test_tagging_a_window_equals_tagging_the_whole_stream(clips):
    torch = need_torch()
    from islr.models.segmenter import SegmenterConfig, SignSegmenter

    cfg = SegmenterConfig(layout=LAYOUT, channels=16, dilations=(1, 2), lookahead=3)
    torch.manual_seed(0)
    model = SignSegmenter(cfg).eval()
    stream = random_streams(clips, LAYOUT, 1, seed=1)[0]
    x = torch.from_numpy(stream.frames)[None]
    with torch.no_grad():
        whole = model(x)[0]
        for t in (cfg.window - 1, cfg.window + 7, len(stream.frames) - 1):
            part = model(x[:, t + 1 - cfg.window : t + 1])[0, -1]
            torch.testing.assert_close(part, whole[t], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(x[:, t - cfg.window + 3 : t + 1])[0, -1], whole[t])


def test_align_counts_edits_and_matches():
    assert align(["a", "b", "c"], ["a", "c"]) == (1, [(0, 0), (2, 1)])
    assert sign_error_rate([["a", "b"], ["c"]], [["a", "x"], []]) == pytest.approx(2 / 3)
    truth = [("a", 0.0, 1.0), ("b", 1.5, 2.0)]
    assert segment_transcript(truth, [(0.1, 0.5), (0.9, 1.9), (3, 4)]) == ["a", "b", "?"]


def _segments(tracker, layout: str, stream) -> list[tuple[float, float]]:
    summarize = FrameSummarizer(layout)
    actions = [
        tracker.push(f, summarize(f), i / stream.fps) for i, f in enumerate(stream.frames)
    ] + [tracker.flush()]
    return [(a.start, a.end) for a in actions if a and a.kind == "final"]


@pytest.mark.slow
def test_segmenter_training_learns_to_split_back_to_back_signs(tmp_path):
    """Trained for seconds on synthetic streams, the learned segmenter finds the signs of
    unseen performances signed one into the next (each clip cut to its sign and 2 frames, as
    in fluent signing: no rest between signs) far better than the heuristic, which waits for
    the hands to rest. Scored on segmentation alone (each segment labelled with the true sign
    it overlaps most)."""
    need_torch()
    from islr.datasets.synthetic import write_synthetic_cache
    from islr.inference.segmenter import SegmenterModel
    from islr.landmarks import LandmarkCache
    from islr.training.segmenter import load_segmenter_config, train_segmenter

    write_synthetic_cache(tmp_path / "cache", n_classes=8, per_class=4, n_signers=4, val_signers=1)
    cfg = load_segmenter_config(
        None,
        [
            f"model.layout={LAYOUT}",
            "model.channels=32",
            "steps=150",
            "batch_size=8",
            "crop_seconds=6",
            "lr=0.005",
        ],
    )
    result = train_segmenter(cfg, tmp_path / "cache", tmp_path / "run")
    assert result["final_loss"] < 0.5 * result["loss"][0]
    tagger = SegmenterModel.load(tmp_path / "run" / "segmenter.onnx", LAYOUT)
    cache = LandmarkCache(tmp_path / "cache")
    val = []
    for entry in cache.entries("val"):
        data = prepare_model_input(cache.load(entry), LAYOUT, None, 2)
        start, end = sign_span(data, LAYOUT)
        val.append((entry.label, data[max(0, start - 2) : end + 3]))
    recipe = StreamRecipe(speed_range=(1.0, 1.0), lead_seconds=(0.0, 0.0), augment=False)
    rng = np.random.default_rng(0)
    streams = [
        build_stream([val[i] for i in rng.choice(len(val), 4, replace=False)], LAYOUT, rng,
                     recipe, ["none"] * 3)
        for _ in range(6)
    ]  # fmt: skip
    stream_cfg = StreamConfig.from_dict(tagger.stream)
    truths, learned, heuristic = [], [], []
    for s in streams:
        truth = [(x.label, x.start / s.fps, x.end / s.fps) for x in s.signs]
        truths.append([x[0] for x in truth])
        tracker = LearnedTracker(tagger.tag_window, tagger.window, tagger.lookahead, stream_cfg)
        learned.append(segment_transcript(truth, _segments(tracker, LAYOUT, s)))
        heuristic.append(segment_transcript(truth, _segments(SegmentTracker(), LAYOUT, s)))
    learned_ser = sign_error_rate(truths, learned)
    heuristic_ser = sign_error_rate(truths, heuristic)
    assert heuristic_ser > 0.25, heuristic_ser  # with no rest between, it merges signs
    assert learned_ser <= 0.4 * heuristic_ser, (learned_ser, heuristic_ser)


@pytest.mark.slow
def test_islr_train_segmenter_writes_a_segmenter_the_engine_finds(tmp_path):
    need_torch()
    from typer.testing import CliRunner

    from islr.cli import build_app
    from islr.datasets.synthetic import write_synthetic_cache
    from islr.errors import ConfigError
    from islr.inference import Engine
    from islr.training.segmenter import load_segmenter_config
    from tests.test_inference_support import tiny_run

    write_synthetic_cache(tmp_path / "cache", n_classes=3, per_class=2, n_signers=2, val_signers=1)
    args = ["train-segmenter", "--data", str(tmp_path / "cache"), "--out", str(tmp_path / "seg")]
    args += ["--steps", "2", "--set", f"model.layout={LAYOUT}", "--set", "model.channels=8"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output
    run = tiny_run(tmp_path / "run")  # a classifier run folder: its segmenter.onnx is found
    (tmp_path / "seg" / "segmenter.onnx").rename(run / "segmenter.onnx")
    engine = Engine.load(run)
    assert engine.segmenter is not None and engine.stream.segmenter == "learned"
    with pytest.raises(ConfigError, match="unknown keys"):
        load_segmenter_config(None, ["model.chanels=8"])
