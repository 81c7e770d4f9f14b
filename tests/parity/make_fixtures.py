"""Write the parity fixtures: inputs and the Python side's outputs, as JSON, for both test suites.

The page's JS twins (islr/serving/static/*.js) must give what Python gives: tests/test_parity.py
checks that Python still reproduces these files, tests/parity/parity.test.mjs (Node) that the JS
does. Regenerate after a deliberate change of either side's behaviour (needs the [train] extra,
for the small model whose outputs the stream fixtures record)::

    PYTHONPATH=. python tests/parity/make_fixtures.py

Frames travel as base64 of deflated float32 (little-endian, NaN kept): the exact numbers on both
sides.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIPPED_SEGMENTER = REPO / "islr" / "pretrained" / "include50.segmenter.onnx"
LABELS = ["a", "b", "c", "d", "e"]
HOLISTIC_FIELDS = {
    "pose": "poseLandmarks",
    "face": "faceLandmarks",
    "left_hand": "leftHandLandmarks",
    "right_hand": "rightHandLandmarks",
}
HOLISTIC_SIZES = {
    "poseLandmarks": 33,
    "faceLandmarks": 468,
    "leftHandLandmarks": 21,
    "rightHandLandmarks": 21,
}


def encode_frames(frames: list[np.ndarray] | np.ndarray) -> str:
    """Arrays -> base64 of their zlib-deflated float32 values (little-endian, row-major)."""
    raw = np.asarray(frames, dtype="<f4").tobytes()
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def decode_frames(text: str, frame_shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`encode_frames`: ``(n, *frame_shape)`` float32."""
    raw = zlib.decompress(base64.b64decode(text))
    return np.frombuffer(raw, dtype="<f4").reshape(-1, *frame_shape).copy()


# ------------------------------------------------------------------------------- model input


def holistic_results(rng: np.random.Generator, missing: set[str]) -> dict[str, list]:
    """A Holistic result (JS field names) as lists of [x, y, z] (3 decimals)."""
    return {
        name: rng.random((n, 3)).round(3).tolist()
        for name, n in HOLISTIC_SIZES.items()
        if name not in missing
    }


def python_frame(results: dict[str, list], layout_name: str) -> np.ndarray:
    """One Holistic result in a layout, as the extractor stores it (NaN where not detected)."""
    from islr.landmarks import get_layout

    layout = get_layout(layout_name)
    frame = np.full((layout.n_points, 3), np.nan, dtype=np.float32)
    for part in layout.parts:
        landmarks = results.get(HOLISTIC_FIELDS[part.component])
        if landmarks:
            frame[layout.slice(part.component)] = [landmarks[i] for i in part.indices]
    return frame


def model_input_outputs(fixture: dict[str, Any]) -> dict[str, Any]:
    """What Python makes of the model-input fixture's inputs (resampling, layouts, model input)."""
    from islr.features import prepare_model_input, resample_indices
    from islr.landmarks import HOLISTIC136, LandmarkSequence

    stream, width, height, seq_len = (fixture[k] for k in ("stream", "width", "height", "seq_len"))
    seq = LandmarkSequence(
        np.stack([python_frame(r, "holistic136") for r in stream]),
        HOLISTIC136.name,
        extra={"image_width": width, "image_height": height},
    )
    return {
        "resample": [resample_indices(t, n).tolist() for t, n in fixture["resample_cases"]],
        "layouts": {
            name: {
                "raw": encode_frames(np.stack([python_frame(r, name) for r in stream])),
                "input": encode_frames(prepare_model_input(seq, name, seq_len)),
            }
            for name in fixture["layouts"]
        },
    }


def model_input_fixture() -> dict[str, Any]:
    from islr.landmarks import get_layout

    rng = np.random.default_rng(0)
    # frames with a hand or the face missing
    stream = [
        holistic_results(
            rng, {"leftHandLandmarks"} if i % 3 == 0 else {"faceLandmarks"} if i % 5 == 0 else set()
        )
        for i in range(6)
    ]
    fixture = {
        "resample_cases": [[1, 4], [3, 8], [7, 7], [10, 4], [61, 32], [62, 60], [150, 60], [9, 64]],
        "stream": stream,
        "width": 640,
        "height": 360,
        "seq_len": 16,
        "layouts": {n: get_layout(n).to_dict() for n in ("holistic136", "hands_pose75")},
    }
    return {**fixture, "expected": model_input_outputs(fixture)}


# --------------------------------------------------------------------------------- streaming


def tracker_script_frames() -> tuple[np.ndarray, list[float]]:
    """30 fps, hands_pose75: rest, a sign (hands moving 1 s), rest, a sign, hands still in view,
    hands gone. Only the shoulders and the right wrist are set."""
    script = (
        [None] * 30
        + [(0.5 + 0.1 * np.sin(i / 3), 0.6) for i in range(30)]
        + [None] * 30
        + [(0.5, 0.6 + 0.1 * np.sin(i / 3)) for i in range(30)]
        + [(0.5, 0.7)] * 45
        + [None] * 30
    )
    frames = np.full((len(script), 75, 3), np.nan, dtype=np.float32)
    frames[:, 11], frames[:, 12] = (0.4, 0.5, 0), (0.6, 0.5, 0)  # shoulders: width 0.2
    for i, hand in enumerate(script):
        if hand is not None:
            frames[i, 54] = (hand[0], hand[1], 0)  # right wrist
    return frames, [i / 30 for i in range(len(script))]


def tracker_actions(frames: np.ndarray, times: list[float], stream: dict) -> list[dict]:
    """The heuristic tracker's actions, as the JS reports them ({kind, n, start, end})."""
    from islr.streaming import FrameSummarizer, SegmentTracker, StreamConfig

    tracker = SegmentTracker(StreamConfig.from_dict(stream))
    summarize = FrameSummarizer("hands_pose75")
    actions: list[dict] = []
    for frame, t in zip(frames, times, strict=True):
        action = tracker.push(frame, summarize(frame), t)
        if action is not None:
            actions.append(action_dict(action))
    last = tracker.flush()
    if last is not None:
        actions.append(action_dict(last))
    return actions


def action_dict(action: Any) -> dict[str, Any]:
    """A TrackerAction as the page's test reports it ({kind, n, start, end})."""
    if action.kind == "final":
        return {
            "kind": action.kind,
            "n": len(action.frames),
            "start": action.start,
            "end": action.end,
        }
    return {"kind": action.kind, "n": len(action.frames)}


def streaming_outputs(fixture: dict[str, Any]) -> dict[str, Any]:
    from islr.streaming import StreamConfig, sign_confidence, softmax, top_labels

    frames = decode_frames(fixture["tracker"]["frames"], (75, 3))
    return {
        "stream_settings": [f.name for f in fields(StreamConfig)],
        "softmax": [
            softmax(np.array(c, dtype=np.float64)).tolist() for c in fixture["softmax_cases"]
        ],
        "top_labels": [
            [{"label": label, "prob": prob} for label, prob in top_labels(np.array(p), labels, k)]
            for p, labels, k in fixture["top_cases"]
        ],
        "sign_confidence": [
            sign_confidence(np.array(p), k) for p, k in fixture["confidence_cases"]
        ],
        "tracker_actions": tracker_actions(frames, fixture["tracker"]["times"], fixture["stream"]),
    }


def streaming_fixture() -> dict[str, Any]:
    from islr.streaming import StreamConfig

    frames, times = tracker_script_frames()
    fixture = {
        "stream": StreamConfig(threshold=0.5).to_dict(),
        "softmax_cases": [[1, 3, 2, -1], [0, 0, 0], [-1000, 0, 1000]],
        "top_cases": [
            [[0.1, 0.5, 0.3, 0.1], ["a", "b", "c", "d"], 3],
            [[0.25, 0.25, 0.5], ["a", "b", "c"], 3],  # a tie: label order
        ],
        "confidence_cases": [
            [[0.7, 0.2, 0.1], 3],  # no added signs: the best probability
            [[0.3, 0.1, 0.1, 0.5], 3],  # an added sign wins: its share over the known signs' mass
            [[0.4, 0.1, 0.1, 0.4], 3],
            [[0.0, 0.0, 1.0], 2],
        ],
        "tracker": {"frames": encode_frames(frames), "times": times},
    }
    return {**fixture, "expected": streaming_outputs(fixture)}


# -------------------------------------------------------------------- a recorded stream's events


def recorded_stream() -> tuple[np.ndarray, list[float]]:
    """Three synthetic signs in a hands_pose75 stream at 30 fps (times summed from 1/30, like a
    player's clock), separated by still hands, a short flick and hands out of view."""
    from islr.features import to_layout
    from tests.test_inference_support import synthetic_sign

    rng = np.random.default_rng(11)
    frames: list[np.ndarray] = []
    for i, pos in enumerate([2, 0, 1]):
        seq = synthetic_sign(pos, 300 + i, signer=4 + i % 2)
        data = to_layout(seq.data, "holistic136", "hands_pose75", 3)
        still = data[0] + rng.normal(0, 0.0005, data[0].shape).astype(np.float32)
        frames += [still] * 20 + list(data)
        gone = data[-1].copy()
        gone[33:] = np.nan  # hands out of view
        frames += [gone] * 20 if i == 1 else [data[-1]] * 25
        if i == 0:  # a flick of the hands too short for a sign: noise, one "rest"
            with_hands = [f for f in data if not np.isnan(f[33:, 0]).all()]
            for k in range(4):
                flick = with_hands[-1].copy()
                flick[33:, 0] += 0.05 * (k + 1)
                frames.append(flick)
            frames += [data[-1]] * 20
    times, t = [], 0.0
    for _ in frames:
        times.append(t)
        t += 1 / 30
    return np.stack(frames).astype(np.float32), times


def replayed_events(
    frames: np.ndarray, times: list[float], stream: dict, calls: list[dict], tagger: Any = None
) -> list[dict]:
    """Python's StreamSegmenter on the frames, its classifier answering with the recorded
    ``calls`` (checking each segment's length); each event with the frame it came at."""
    from islr.streaming import StreamConfig, StreamSegmenter

    replay = iter(calls)

    def classify(segment: np.ndarray) -> np.ndarray:
        call = next(replay)
        assert call["n"] == len(segment), (call["n"], len(segment))
        return np.asarray(call["probs"])

    segmenter = StreamSegmenter(
        "hands_pose75", LABELS, classify, StreamConfig.from_dict(stream), tagger
    )
    events = [
        {**e, "frame": i}
        for i, (frame, t) in enumerate(zip(frames, times, strict=True))
        for e in segmenter.push(frame, t)
    ]
    events += [{**e, "frame": len(frames)} for e in segmenter.flush()]
    assert next(replay, None) is None, "the recorded calls were not all made"
    return events


def recorded_calls(frames, times, stream: dict, engine, tagger: Any = None) -> list[dict]:
    """The classifier calls of one pass (the segments' lengths and the model's probabilities)."""
    from islr.streaming import StreamConfig, StreamSegmenter

    calls: list[dict] = []

    def classify(segment: np.ndarray) -> np.ndarray:
        probs = engine.predict_batch([segment])[0]
        calls.append({"n": len(segment), "probs": [round(float(p), 9) for p in probs]})
        return probs

    segmenter = StreamSegmenter(
        "hands_pose75", LABELS, classify, StreamConfig.from_dict(stream), tagger
    )
    for frame, t in zip(frames, times, strict=True):
        segmenter.push(frame, t)
    segmenter.flush()
    return calls


def stream_events_fixture() -> dict[str, Any]:
    """A recorded stream through both trackers with a small real model's probabilities."""
    from islr.inference import Engine
    from islr.inference.segmenter import SegmenterModel, merged_stream
    from islr.landmarks import get_layout
    from islr.streaming import StreamConfig
    from tests.test_inference_support import tiny_run

    frames, times = recorded_stream()
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.load(tiny_run(Path(tmp) / "run", labels=tuple(LABELS)))
        # a threshold between the segments' best probabilities: both signs and unknowns
        calls = recorded_calls(frames, times, StreamConfig(threshold=0.0).to_dict(), engine)
        loose = replayed_events(frames, times, StreamConfig(threshold=0.0).to_dict(), calls)
        best = sorted(e["prob"] for e in loose if e["type"] == "sign")
        heuristic = StreamConfig(threshold=round((best[0] + best[1]) / 2, 5)).to_dict()
        tagger = SegmenterModel.load(SHIPPED_SEGMENTER, "hands_pose75")
        learned = merged_stream(StreamConfig(threshold=0.3), tagger).to_dict()
        runs = {
            "heuristic": {
                "stream": heuristic,
                "calls": recorded_calls(frames, times, heuristic, engine),
            },
            "learned": {
                "stream": learned,
                "calls": recorded_calls(frames, times, learned, engine, tagger),
            },
        }
    fixture = {
        "labels": LABELS,
        "layout": get_layout("hands_pose75").to_dict(),
        "frames": encode_frames(frames),
        "times": times,
        "segmenter": {
            "file": SHIPPED_SEGMENTER.relative_to(REPO).as_posix(),
            "window": tagger.window,
            "lookahead": tagger.lookahead,
            "layout": tagger.layout.to_dict(),
            "n_coords": 2,
        },
        "runs": runs,
    }
    return {**fixture, "expected": stream_events_outputs(fixture)}


def stream_events_outputs(fixture: dict[str, Any]) -> dict[str, Any]:
    from islr.inference.segmenter import SegmenterModel

    frames = decode_frames(fixture["frames"], (75, 3))
    tagger = SegmenterModel.load(REPO / fixture["segmenter"]["file"], "hands_pose75")
    return {
        name: replayed_events(
            frames,
            fixture["times"],
            run["stream"],
            run["calls"],
            tagger if name == "learned" else None,
        )
        for name, run in fixture["runs"].items()
    }


# -------------------------------------------------------------------------------- vocabulary

KNOWN = ["a", "b", "c", "d", "e", "f"]
DIM = 16


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.normal(size=(n, DIM))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def served_vocabulary(vocab, calibration, known: list[str]) -> dict:
    """The GET /v1/vocabulary answer's fields the page scores with."""
    signs = [{"label": k, "kind": "known", "examples": 0} for k in known if vocab.find(k) is None]
    for sign in vocab.signs:
        signs.append({**sign.to_dict(), "kind": "known" if sign.label in known else "added"})
    head = vocab.head.to_dict() if vocab.head_is_current(known) else None
    return {
        "calibration": calibration.to_dict(),
        "embedding_dim": DIM,
        "signs": signs,
        "head": head,
    }


def with_fitted_head(vocab, rng: np.random.Generator):
    """``vocab`` with a head refitted on made-up training embeddings of the known signs."""
    from islr.modelfile import EmbeddingReference
    from islr.vocabulary import fit_head

    centres = unit_rows(rng, len(KNOWN))
    samples = np.repeat(centres, 8, axis=0) + rng.normal(scale=0.3, size=(8 * len(KNOWN), DIM))
    reference = EmbeddingReference(
        known_embeddings=samples / np.linalg.norm(samples, axis=1, keepdims=True),
        known_targets=np.repeat(np.arange(len(KNOWN)), 8),
    )
    return fit_head(vocab, reference, KNOWN)


def vocabulary_from_served(served: dict):
    """The Vocabulary and Calibration a served answer describes, in float64 as the page has them."""
    from islr.modelfile import Calibration
    from islr.vocabulary import AddedSign, Vocabulary, VocabularyHead

    signs = tuple(
        AddedSign(s["label"], np.asarray(s["prototypes"], dtype=np.float64), s["examples"])
        for s in served["signs"]
        if s.get("prototypes")
    )
    head = served["head"] and VocabularyHead.from_dict(served["head"], served["embedding_dim"])
    return Vocabulary(served["embedding_dim"], signs, head), Calibration(**served["calibration"])


def vocabulary_outputs(fixture: dict[str, Any]) -> list[dict]:
    from islr.vocabulary import vocabulary_log_scores

    out = []
    for case in fixture["cases"]:
        vocab, calibration = vocabulary_from_served(fixture["vocabularies"][case["vocabulary"]])
        scores = vocabulary_log_scores(
            np.asarray([case["logits"]]), np.asarray([case["embedding"]]), vocab, KNOWN, calibration
        )[0]
        e = np.exp(scores - scores.max())
        out.append({"labels": vocab.labels(KNOWN), "probs": (e / e.sum()).tolist()})
    return out


def vocabulary_fixture() -> dict[str, Any]:
    from islr.modelfile import Calibration
    from islr.vocabulary import AddedSign, Vocabulary, log_softmax

    rng = np.random.default_rng(3)
    calibration = Calibration(scale=23.5, bias=-19.25)
    protos = unit_rows(rng, 4)
    # rounded as GET /v1/vocabulary serves them (6 decimals), the same numbers on both sides
    vocab = Vocabulary(
        DIM,
        (
            AddedSign("new-1", protos[:2].round(6), 6),  # two enrolments: two prototypes
            AddedSign("c", protos[2:3].round(6), 3),  # a known sign with added examples
            AddedSign("new-2", protos[3:].round(6), 3),
        ),
    )
    vocabularies = [
        served_vocabulary(v, calibration, KNOWN)
        for v in (vocab, with_fitted_head(vocab, rng), Vocabulary(DIM))
    ]
    cases = []
    for ensemble in (False, True):
        for i in range(8):
            logits = rng.normal(scale=3.0, size=len(KNOWN))
            if ensemble:
                logits = log_softmax(logits)  # an ensemble's output: already log-probabilities
            # embeddings near a prototype (recognised) or anywhere (a known sign wins)
            near = protos[i % 4] + rng.normal(scale=0.05 if i < 4 else 3.0, size=DIM)
            embedding = near / np.linalg.norm(near)
            for v in range(len(vocabularies)):
                cases.append(
                    {"logits": logits.tolist(), "embedding": embedding.tolist(), "vocabulary": v}
                )
    fixture = {"known": KNOWN, "vocabularies": vocabularies, "cases": cases}
    return {**fixture, "expected": vocabulary_outputs(fixture)}


# ------------------------------------------------------------------------- the head's refit

FIT_KNOWN = [f"k{i}" for i in range(10)]
FIT_DIM = 24


def head_fit_outputs(fixture: dict[str, Any]) -> dict[str, Any]:
    """Python's fit_head on the fixture's known embeddings and takes (no augmented copies, as
    the page adds signs), and the top-1 of each query under it."""
    from islr.modelfile import Calibration, EmbeddingReference
    from islr.vocabulary import AddedSign, Vocabulary, fit_head, vocabulary_log_scores

    known = fixture["known"]
    signs = tuple(
        AddedSign(s["label"], np.asarray(s["prototypes"], dtype=np.float32), s["examples"])
        for s in fixture["signs"]
    )
    reference = EmbeddingReference(
        known_embeddings=np.asarray(fixture["reference"]["embeddings"], dtype=np.float64),
        known_targets=np.asarray(fixture["reference"]["targets"]),
    )
    vocab = fit_head(Vocabulary(fixture["dim"], signs), reference, known)
    queries = np.asarray(fixture["queries"], dtype=np.float64)
    logits = np.asarray(fixture["logits"], dtype=np.float64)
    scores = vocabulary_log_scores(logits, queries, vocab, known, Calibration())
    labels = vocab.labels(known)
    return {"top1": [labels[int(i)] for i in scores.argmax(axis=1)], "head": vocab.head.to_dict()}


def head_fit_fixture() -> dict[str, Any]:
    """Known signs' training embeddings around 10 centres, 3 takes each of two new signs and
    of a known one, and queries near every sign (some ambiguous)."""
    rng = np.random.default_rng(7)

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    centres = unit(rng.normal(size=(len(FIT_KNOWN) + 2, FIT_DIM)))
    targets = np.repeat(np.arange(len(FIT_KNOWN)), 8)
    embeddings = unit(centres[targets] + rng.normal(scale=0.07, size=(len(targets), FIT_DIM)))
    signs = []
    for label, c in (("new-1", 10), ("new-2", 11), ("k3", 3)):
        takes = unit(centres[c] + rng.normal(scale=0.06, size=(3, FIT_DIM))).astype(np.float32)
        signs.append({"label": label, "prototypes": takes.tolist(), "examples": 3})
    which = rng.integers(0, len(centres), size=60)
    queries = unit(centres[which] + rng.normal(scale=0.1, size=(60, FIT_DIM)))
    # the classifier's own logits: confident in the known centre a query comes from (if any)
    logits = rng.normal(scale=1.0, size=(60, len(FIT_KNOWN)))
    logits[which < len(FIT_KNOWN), which[which < len(FIT_KNOWN)]] += 4.0
    fixture = {
        "known": FIT_KNOWN,
        "dim": FIT_DIM,
        "reference": {
            "embeddings": embeddings.round(5).tolist(),
            "targets": targets.tolist(),
        },
        "signs": signs,
        "queries": queries.round(5).tolist(),
        "logits": logits.round(5).tolist(),
    }
    return {**fixture, "expected": head_fit_outputs(fixture)}


# ------------------------------------------------------------------- the model file's arrays


def arrays_outputs(fixture: dict[str, Any]) -> dict[str, Any]:
    """The encoded arrays (float16 and int8 rows, as a model's embedding reference stores them)
    decoded by Python: what the page must read from them."""
    from islr.modelfile import decode_array, decode_int8_rows

    return {
        "float16": decode_array(fixture["float16"]).tolist(),
        "int8_rows": decode_int8_rows(fixture["int8_rows"]).tolist(),
    }


def arrays_fixture() -> dict[str, Any]:
    from islr.modelfile import encode_array, encode_int8_rows

    rng = np.random.default_rng(5)
    values = rng.normal(scale=0.3, size=(4, 6))
    values[0, :3] = [0.0, 1e-6, -65504.0]  # zero, a subnormal, the largest float16
    fixture = {
        "float16": encode_array(values),
        "int8_rows": encode_int8_rows(rng.normal(size=(5, 7))),
    }
    return {**fixture, "expected": arrays_outputs(fixture)}


LABEL_CASES = [
    "  big   /  large ",
    "cafe\u0301",
    "bank\u00a0\u2003note",
    "\tfootball\n",
    "ba\u200bnk",
    "\u202egnab",
    "ba\x00nk",
    "two\nlines",
    "a\u2028b",
    "x" * 64,
    "x" * 65,
    "\U0001f44d" * 64,  # 64 characters, 128 UTF-16 code units
    "   ",
    "",
]


def labels_outputs(fixture: dict[str, Any]) -> dict[str, Any]:
    """Each label as normalise_label stores it, or None where it is refused."""
    from islr.landmarks.labels import LabelError, normalise_label

    out = []
    for label in fixture["cases"]:
        try:
            out.append(normalise_label(label))
        except LabelError:
            out.append(None)
    return {"stored": out}


def labels_fixture() -> dict[str, Any]:
    fixture = {"cases": LABEL_CASES}
    return {**fixture, "expected": labels_outputs(fixture)}


# ------------------------------------------------------------------------------------- main

FIXTURES = {
    "model_input.json": (model_input_fixture, model_input_outputs),
    "streaming.json": (streaming_fixture, streaming_outputs),
    "stream_events.json": (stream_events_fixture, stream_events_outputs),
    "vocabulary.json": (vocabulary_fixture, vocabulary_outputs),
    "head_fit.json": (head_fit_fixture, head_fit_outputs),
    "arrays.json": (arrays_fixture, arrays_outputs),
    "labels.json": (labels_fixture, labels_outputs),
}


def main() -> None:
    sys.path.insert(0, str(REPO))
    for name, (make, _) in FIXTURES.items():
        path = HERE / name
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(make(), separators=(",", ":")) + "\n")
        tmp.replace(path)
        print(f"{path.relative_to(REPO)}: {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
