"""The page's JS input pipeline (islr/serving/static/pipeline.js) against the Python one, in Node.

Fast (no browser): runs the module in Node and compares resampling, layout gathering, aspect and
the model input with islr.features; and checks the JS streaming segmenter on a scripted stream.
Skips when Node is not installed (fails under CI=true).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import missing_tool

from islr.features import prepare_model_input, resample_indices
from islr.inference import StreamConfig
from islr.landmarks import HOLISTIC136, LandmarkSequence, get_layout

PIPELINE_JS = Path(__file__).resolve().parents[1] / "islr" / "serving" / "static" / "pipeline.js"


def run_js(tmp_path: Path, body: str) -> object:
    """Run ``body`` (an async JS function body with `P` = the pipeline module); return its JSON."""
    node = shutil.which("node")
    if node is None:
        missing_tool("Node.js is not installed; the JS pipeline is also covered by test_browser.py")
    module = tmp_path / "pipeline.mjs"  # .mjs: Node loads it as an ES module as the browser does
    module.write_text(PIPELINE_JS.read_text())
    script = tmp_path / "run.mjs"
    script.write_text(
        f"import * as P from {json.dumps(module.as_uri())};\n"
        f"const result = await (async () => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(result));\n"
    )
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_resample_indices_match_python(tmp_path: Path) -> None:
    cases = [(1, 4), (3, 8), (7, 7), (10, 4), (61, 32), (62, 60), (150, 60), (9, 64)]
    got = run_js(tmp_path, f"return {json.dumps(cases)}.map(([t, l]) => P.resampleIndices(t, l));")
    for (n_frames, seq_len), js in zip(cases, got, strict=True):
        assert js == resample_indices(n_frames, seq_len).tolist(), (n_frames, seq_len)


def holistic_results(rng: np.random.Generator, missing: set[str]) -> dict:
    """A Holistic-shaped result object (JS field names) with random landmarks."""
    sizes = {
        "poseLandmarks": 33,
        "faceLandmarks": 468,
        "leftHandLandmarks": 21,
        "rightHandLandmarks": 21,
    }
    results = {}
    for name, n in sizes.items():
        if name in missing:
            continue
        pts = rng.random((n, 3)).round(5)
        results[name] = [{"x": x, "y": y, "z": z} for x, y, z in pts.tolist()]
    return results


def python_frame(results: dict, layout_name: str) -> np.ndarray:
    fields = {
        "pose": "poseLandmarks",
        "face": "faceLandmarks",
        "left_hand": "leftHandLandmarks",
        "right_hand": "rightHandLandmarks",
    }
    layout = get_layout(layout_name)
    frame = np.full((layout.n_points, 3), np.nan, dtype=np.float32)
    for part in layout.parts:
        landmarks = results.get(fields[part.component])
        if landmarks:
            rows = layout.slice(part.component)
            frame[rows] = [[landmarks[i][k] for k in "xyz"] for i in part.indices]
    return frame


@pytest.mark.parametrize("layout_name", ["holistic136", "hands_pose75"])
def test_model_input_matches_prepare_model_input(tmp_path: Path, layout_name: str) -> None:
    rng = np.random.default_rng(0)
    width, height, seq_len = 640, 360, 16
    # 23 frames, some with a hand or the face missing
    stream = [
        holistic_results(
            rng, {"leftHandLandmarks"} if i % 3 == 0 else {"faceLandmarks"} if i % 5 == 0 else set()
        )
        for i in range(23)
    ]
    layout = get_layout(layout_name).to_dict()
    got = run_js(
        tmp_path,
        f"""
        const info = P.layoutInfo({json.dumps(layout)});
        const stream = {json.dumps(stream)};
        const raw = stream.map((r) => P.frameFromResults(r, info, 3));
        const frames = raw.map((f) => P.aspectCorrected(f, 3, {width}, {height}));
        const input = P.modelInput(frames, {seq_len}, info.nPoints * 3);
        const nan = (a) => Array.from(a, (v) => (Number.isNaN(v) ? null : v));
        return {{raw: raw.map(nan), input: nan(input)}};
        """,
    )
    expected_raw = np.stack([python_frame(r, layout_name) for r in stream])
    got_raw = np.array(got["raw"], dtype=np.float64).reshape(expected_raw.shape)
    np.testing.assert_allclose(got_raw, expected_raw, atol=1e-6)  # NaN where NaN

    # Python's path from the holistic136 data the extractor stores (layout mapping included)
    seq = LandmarkSequence(
        np.stack([python_frame(r, "holistic136") for r in stream]),
        HOLISTIC136.name,
        extra={"image_width": width, "image_height": height},
    )
    expected = prepare_model_input(seq, layout_name, seq_len)
    got_input = np.array(got["input"], dtype=np.float64).reshape(expected.shape)
    np.testing.assert_allclose(got_input, expected, atol=1e-6)


def test_softmax_and_top_k(tmp_path: Path) -> None:
    got = run_js(
        tmp_path,
        "const p = P.softmax([1, 3, 2, -1]); return {p, top: P.topK(p, ['a', 'b', 'c', 'd'], 3)};",
    )
    logits = np.array([1, 3, 2, -1], dtype=np.float64)
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(got["p"], expected, rtol=1e-9)
    assert [t["label"] for t in got["top"]] == ["b", "c", "a"]


def test_segmenter_reports_one_final_per_sign(tmp_path: Path) -> None:
    """30 fps: rest, sign (hands moving 1 s), rest, sign, hands still in view, hands gone."""
    got = run_js(
        tmp_path,
        f"const STREAM = {json.dumps(StreamConfig().to_dict())};\n"
        + """
        const info = P.layoutInfo({name: "hands_pose75", parts: [
          {component: "pose", indices: [...Array(33).keys()]},
          {component: "left_hand", indices: [...Array(21).keys()]},
          {component: "right_hand", indices: [...Array(21).keys()]}]});
        const seg = new P.StreamSegmenter(STREAM);
        const frameAt = (hand) => {
          const f = new Float32Array(75 * 3).fill(NaN);
          f.set([0.4, 0.5, 0], 11 * 3); f.set([0.6, 0.5, 0], 12 * 3);  // shoulders: width 0.2
          if (hand) f.set([hand[0], hand[1], 0], 54 * 3);  // right wrist
          return f;
        };
        const script = [];
        for (let i = 0; i < 30; i++) script.push(null);                                   // rest
        for (let i = 0; i < 30; i++) script.push([0.5 + 0.1 * Math.sin(i / 3), 0.6]);     // sign 1
        for (let i = 0; i < 30; i++) script.push(null);                                   // rest
        for (let i = 0; i < 30; i++) script.push([0.5, 0.6 + 0.1 * Math.sin(i / 3)]);     // sign 2
        for (let i = 0; i < 45; i++) script.push([0.5, 0.7]);                             // still
        for (let i = 0; i < 30; i++) script.push(null);                                   // gone
        const actions = [];
        script.forEach((hand, i) => {
          const f = frameAt(hand);
          const a = seg.push(f, P.frameSummary(f, info, 3), i / 30);
          if (a) actions.push({kind: a.kind, n: a.frames ? a.frames.length : 0, start: a.start, end: a.end});
        });
        const last = seg.flush();
        if (last) actions.push({kind: last.kind});
        return actions;
        """,
    )
    finals = [a for a in got if a["kind"] == "final"]
    assert len(finals) == 2, got
    (s1, s2) = finals
    assert 0.95 <= s1["start"] <= 1.05 and 1.9 <= s1["end"] <= 2.05
    assert 2.95 <= s2["start"] <= 3.05 and 3.9 <= s2["end"] <= 4.6  # may include the hold's start
    assert any(a["kind"] == "partial" for a in got)
    # the same script through the Python segmenter gives the same actions, frame for frame
    assert got == _python_segmenter_actions()


def _python_segmenter_actions() -> list[dict]:
    """The script of the test above through islr.streaming, as the JS reports it."""
    from islr.streaming import FrameSummarizer, SegmentTracker, StreamConfig

    layout = get_layout("hands_pose75")

    def frame_at(hand: tuple[float, float] | None) -> np.ndarray:
        f = np.full((75, 3), np.nan, dtype=np.float32)
        f[11], f[12] = (0.4, 0.5, 0), (0.6, 0.5, 0)
        if hand is not None:
            f[54] = (hand[0], hand[1], 0)
        return f

    script = (
        [None] * 30
        + [(0.5 + 0.1 * np.sin(i / 3), 0.6) for i in range(30)]
        + [None] * 30
        + [(0.5, 0.6 + 0.1 * np.sin(i / 3)) for i in range(30)]
        + [(0.5, 0.7)] * 45
        + [None] * 30
    )
    tracker, summarize = SegmentTracker(StreamConfig(threshold=0.5)), FrameSummarizer(layout)
    actions: list[dict] = []
    for i, hand in enumerate(script):
        f = frame_at(hand)
        action = tracker.push(f, summarize(f), i / 30)
        if action is None:
            continue
        if action.kind == "final":
            n, start, end = len(action.frames), action.start, action.end
            actions.append({"kind": action.kind, "n": n, "start": start, "end": end})
        else:
            actions.append({"kind": action.kind, "n": len(action.frames)})
    last = tracker.flush()
    if last is not None:
        actions.append({"kind": last.kind})
    return actions


def recorded_stream() -> tuple[list[np.ndarray], list[float]]:
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
    return frames, times


def python_events(frames, times, config, classify) -> tuple[list[dict], list[dict]]:
    """The Python segmenter's events, and every classifier call it made (frames, probabilities)."""
    from islr.streaming import StreamSegmenter

    calls: list[dict] = []

    def recording(segment: np.ndarray) -> np.ndarray:
        probs = classify(segment)
        calls.append({"n": len(segment), "probs": probs.tolist()})
        return probs

    segmenter = StreamSegmenter("hands_pose75", LABELS, recording, config)
    events = [
        {**e, "frame": i}  # when it came: the same frame in both
        for i, (frame, t) in enumerate(zip(frames, times, strict=True))
        for e in segmenter.push(frame, t)
    ]
    return events + [{**e, "frame": len(frames)} for e in segmenter.flush()], calls


LABELS = ["a", "b", "c", "d", "e"]

# JS for the parity tests: `handle(action, i)` answers each classification with the recorded
# Python probabilities (`rec.calls`, checking the segment length) and collects the events.
REPLAY_JS = """let k = 0;
        const classify = (segment) => {
          const call = rec.calls[k++];
          if (!call || call.n !== segment.length) {
            throw new Error(`classifier call ${k}: ${segment.length} frames, Python: ${call?.n}`);
          }
          return call.probs;
        };
        const events = [];
        const handle = (action, i) => {
          if (!action) return;
          const probs = action.kind === "rest" ? null : classify(action.frames);
          events.push({...P.streamEvent(action, probs, LABELS, config), frame: i});
        };""".replace("LABELS", json.dumps(LABELS))


def test_js_and_python_segment_a_recorded_stream_into_the_same_events(tmp_path: Path) -> None:
    """pipeline.js's StreamSegmenter + streamEvent and islr.streaming, the same stream,
    settings and classifier outputs (a real model's, recorded in Python): the same events."""
    from islr.inference import Engine
    from tests.test_inference_support import tiny_run

    engine = Engine.load(tiny_run(tmp_path / "run", labels=tuple(LABELS)))
    frames, times = recorded_stream()

    def classify(segment: np.ndarray) -> np.ndarray:
        return engine.predict_batch([segment])[0]

    # a threshold between the segments' best probabilities: both signs and unknowns
    events, _ = python_events(frames, times, StreamConfig(threshold=0.0), classify)
    best = sorted(e["prob"] for e in events if e["type"] == "sign")
    assert len(best) == 3, events
    config = StreamConfig(threshold=round((best[0] + best[1]) / 2, 5))
    events, calls = python_events(frames, times, config, classify)
    (tmp_path / "stream.json").write_text(
        json.dumps(
            {
                "frames": [[None if np.isnan(v) else float(v) for v in f.ravel()] for f in frames],
                "times": times,
                "calls": calls,
                "stream": config.to_dict(),  # as GET /v1/model serves it
                "layout": get_layout("hands_pose75").to_dict(),
            }
        )
    )
    got = run_js(
        tmp_path,
        f"""
        const fs = await import("node:fs");
        const rec = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / "stream.json"))}));
        const info = P.layoutInfo(rec.layout);
        const config = P.streamConfig(rec.stream);
        const seg = new P.StreamSegmenter(config);
        {REPLAY_JS}
        rec.frames.forEach((values, i) => {{
          const frame = Float32Array.from(values, (v) => (v === null ? NaN : v));
          handle(seg.push(frame, P.frameSummary(frame, info, 3), rec.times[i]), i);
        }});
        handle(seg.flush(), rec.frames.length);
        return {{events, calls: k}};
        """,
    )
    assert got["calls"] == len(calls)
    kinds = [e["type"] for e in events]
    assert kinds.count("sign") >= 1 and kinds.count("unknown") >= 1 and "rest" in kinds, kinds
    assert [(e["type"], e["frame"]) for e in got["events"]] == [
        (e["type"], e["frame"]) for e in events
    ]
    assert_same_events(got["events"], events, tops=True)


def assert_same_events(js_events: list[dict], py_events: list[dict], tops: bool = False) -> None:
    """The page's events are the server's: labels, start/end within a frame (and with ``tops``,
    the top guesses)."""
    for js, py in zip(js_events, py_events, strict=True):
        assert js.get("label") == py.get("label")
        for key in ("start", "end"):
            if key in py:
                assert abs(js[key] - py[key]) <= 1 / 30, (js, py)
        if tops:
            assert [t["label"] for t in js.get("top", [])] == [
                t["label"] for t in py.get("top", [])
            ]
            np.testing.assert_allclose(
                [t["prob"] for t in js.get("top", [])],
                [t["prob"] for t in py.get("top", [])],
                atol=2e-5,
            )


def ort_web_module() -> Path:
    """onnxruntime-web's ES module for Node, from web/node_modules (`make web` installs it)."""
    module = REPO / "web" / "node_modules" / "onnxruntime-web" / "dist" / "ort.wasm.min.mjs"
    if not module.is_file():
        missing_tool(f"{module} is missing: run `make web` (npm ci in web/)")
    return module


REPO = PIPELINE_JS.parents[3]
SHIPPED_SEGMENTER = REPO / "islr" / "pretrained" / "include50.segmenter.onnx"


def test_js_and_python_learned_segmenters_give_the_same_events(tmp_path: Path) -> None:
    """The learned segmenter (the shipped include50.segmenter.onnx) in onnxruntime-web under
    pipeline.js's LearnedSegmenter, and in ONNX Runtime under islr.streaming, on the
    same recorded stream, with the same settings and classifier outputs: the same events
    (labels, order, the frame each came at, start/end within one frame)."""
    from islr.inference import Engine
    from islr.inference.segmenter import SegmenterModel, merged_stream
    from islr.streaming import StreamSegmenter
    from tests.test_inference_support import tiny_run

    engine = Engine.load(tiny_run(tmp_path / "run", labels=tuple(LABELS)))
    tagger = SegmenterModel.load(SHIPPED_SEGMENTER, "hands_pose75")
    config = merged_stream(StreamConfig(threshold=0.3), tagger)
    assert config.segmenter == "learned"
    frames, times = recorded_stream()
    calls: list[dict] = []

    def classify(segment: np.ndarray) -> np.ndarray:
        probs = engine.predict_batch([segment])[0]
        calls.append({"n": len(segment), "probs": probs.tolist()})
        return probs

    segmenter = StreamSegmenter("hands_pose75", LABELS, classify, config, tagger)
    events = [
        {**e, "frame": i}
        for i, (frame, t) in enumerate(zip(frames, times, strict=True))
        for e in segmenter.push(frame, t)
    ]
    events += [{**e, "frame": len(frames)} for e in segmenter.flush()]
    kinds = [e["type"] for e in events]
    assert kinds.count("sign") + kinds.count("unknown") >= 2 and "rest" in kinds, kinds
    assert "partial" in kinds
    (tmp_path / "stream.json").write_text(
        json.dumps(
            {
                "frames": [[None if np.isnan(v) else float(v) for v in f.ravel()] for f in frames],
                "times": times,
                "calls": calls,
                "stream": config.to_dict(),
                "layout": get_layout("hands_pose75").to_dict(),
                "segmenter": {
                    "window": tagger.window,
                    "lookahead": tagger.lookahead,
                    "layout": tagger.layout.to_dict(),
                },
            }
        )
    )
    got = run_js(
        tmp_path,
        f"""
        const fs = await import("node:fs");
        const ort = await import({json.dumps(ort_web_module().as_uri())});
        ort.env.wasm.numThreads = 1;
        const session = await ort.InferenceSession.create(
          fs.readFileSync({json.dumps(str(SHIPPED_SEGMENTER))}), {{ executionProviders: ["wasm"] }});
        const rec = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / "stream.json"))}));
        const info = P.layoutInfo(rec.layout);
        const config = P.streamConfig(rec.stream);
        const seg = new P.LearnedSegmenter(config, rec.segmenter.window, rec.segmenter.lookahead);
        const rows = P.rowMap(info, P.layoutInfo(rec.segmenter.layout));
        const tag = async (frames) => {{
          const data = P.segmenterInput(frames, rows, 3, 2);
          const out = await session.run({{
            landmarks: new ort.Tensor("float32", data, [1, frames.length, rows.length, 2]) }});
          const tags = out.tags.data;
          return Array.from(tags.subarray(tags.length - 3));
        }};
        {REPLAY_JS}
        for (let i = 0; i < rec.frames.length; i++) {{
          const frame = Float32Array.from(rec.frames[i], (v) => (v === null ? NaN : v));
          handle(await seg.push(frame, P.frameSummary(frame, info, 3), rec.times[i], tag), i);
        }}
        handle(seg.flush(), rec.frames.length);
        return {{events, calls: k}};
        """,
    )
    assert got["calls"] == len(calls)
    assert [(e["type"], e["frame"]) for e in got["events"]] == [
        (e["type"], e["frame"]) for e in events
    ]
    assert_same_events(got["events"], events)


def test_sign_confidence_matches_python(tmp_path: Path) -> None:
    """The unknown-sign test's score, in JS and Python, with and without added signs."""
    from islr.streaming import sign_confidence

    cases = [
        ([0.7, 0.2, 0.1], 3),  # no added signs: the best probability
        ([0.3, 0.1, 0.1, 0.5], 3),  # an added sign wins: its share over the known signs' mass
        ([0.4, 0.1, 0.1, 0.4], 3),
        ([0.0, 0.0, 1.0], 2),
    ]
    got = run_js(tmp_path, f"return {json.dumps(cases)}.map(([p, k]) => P.signConfidence(p, k));")
    np.testing.assert_allclose(got, [sign_confidence(np.array(p), k) for p, k in cases], rtol=1e-12)
