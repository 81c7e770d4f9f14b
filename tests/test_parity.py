"""The page's JS twins and Python give the same numbers: one set of fixtures, read by both.

tests/parity/make_fixtures.py writes inputs and Python's outputs as JSON. Here Python must still
reproduce every fixture (so a fixture never goes stale), and Node runs tests/parity/*.test.mjs,
which checks the page's modules (islr/serving/static/*.js) against the same files: the input
pipeline, the stream segmenters (heuristic, and learned in onnxruntime-web), the unknown-sign
score, the scoring of added signs, the vocabulary head's refit (the same top-1 as scikit-learn's),
the model file's encoded arrays, and that the JS settings list is StreamConfig's fields; and the
page's own vocabulary for static sites (local_vocabulary.js) on its own.
Fast (no browser, no torch); the Node half skips without Node (fails under CI=true).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
from conftest import missing_tool

PARITY = Path(__file__).resolve().parent / "parity"
sys.path.insert(0, str(PARITY))
import make_fixtures  # noqa: E402


def load(name: str) -> dict:
    return json.loads((PARITY / name).read_text())


def test_python_reproduces_the_model_input_fixture() -> None:
    fixture = load("model_input.json")
    got, expected = make_fixtures.model_input_outputs(fixture), fixture["expected"]
    assert got["resample"] == expected["resample"]
    for name, arrays in expected["layouts"].items():
        for key in ("raw", "input"):
            np.testing.assert_allclose(
                make_fixtures.decode_frames(got["layouts"][name][key], (3,)),
                make_fixtures.decode_frames(arrays[key], (3,)),
                atol=1e-6,
            )  # NaN where NaN


def test_python_reproduces_the_streaming_fixture() -> None:
    from islr.streaming import StreamConfig

    fixture = load("streaming.json")
    got, expected = make_fixtures.streaming_outputs(fixture), fixture["expected"]
    assert got["stream_settings"] == [f.name for f in fields(StreamConfig)]
    assert got == expected
    finals = [a for a in expected["tracker_actions"] if a["kind"] == "final"]
    assert len(finals) == 2 and any(a["kind"] == "partial" for a in expected["tracker_actions"])
    s1, s2 = finals
    assert 0.95 <= s1["start"] <= 1.05 and 1.9 <= s1["end"] <= 2.05
    assert 2.95 <= s2["start"] <= 3.05 and 3.9 <= s2["end"] <= 4.6  # may include the hold's start


def test_python_reproduces_the_stream_events_fixture() -> None:
    fixture = load("stream_events.json")
    assert make_fixtures.stream_events_outputs(fixture) == fixture["expected"]
    heuristic = [e["type"] for e in fixture["expected"]["heuristic"]]
    assert heuristic.count("sign") >= 1 and heuristic.count("unknown") >= 1 and "rest" in heuristic
    learned = [e["type"] for e in fixture["expected"]["learned"]]
    assert learned.count("sign") + learned.count("unknown") >= 2 and "rest" in learned
    assert "partial" in learned and fixture["runs"]["learned"]["stream"]["segmenter"] == "learned"


def test_python_reproduces_the_vocabulary_fixture() -> None:
    fixture = load("vocabulary.json")
    got = make_fixtures.vocabulary_outputs(fixture)
    winners = set()
    for py, expected in zip(got, fixture["expected"], strict=True):
        assert py["labels"] == expected["labels"]
        np.testing.assert_allclose(py["probs"], expected["probs"], rtol=1e-9, atol=1e-12)
        winners.add(py["labels"][int(np.argmax(py["probs"]))])
    # the cases exercise added signs, the known sign with examples and plain known signs
    assert {"new-1", "new-2", "c"} <= winners and winners - {"new-1", "new-2", "c"}
    heads = [v["head"] is not None for v in fixture["vocabularies"]]
    assert heads == [False, True, False]  # nearest take, refitted head, nothing added


def test_python_reproduces_the_head_fit_fixture() -> None:
    """scikit-learn's fit of the vocabulary head: the same top-1 (the JS fit must match it)."""
    fixture = load("head_fit.json")
    got = make_fixtures.head_fit_outputs(fixture)
    assert got["top1"] == fixture["expected"]["top1"]
    np.testing.assert_allclose(got["head"]["bias"], fixture["expected"]["head"]["bias"], atol=1e-3)
    # the queries exercise both added signs, the known sign with examples and other known ones
    assert {"new-1", "new-2", "k3", "k0"} <= set(got["top1"])


def test_python_reproduces_the_arrays_fixture() -> None:
    fixture = load("arrays.json")
    assert make_fixtures.arrays_outputs(fixture) == fixture["expected"]


def test_python_reproduces_the_labels_fixture() -> None:
    fixture = load("labels.json")
    assert make_fixtures.labels_outputs(fixture) == fixture["expected"]


def test_js_twins_match_the_fixtures() -> None:
    node = shutil.which("node")
    if node is None:
        missing_tool("Node.js is not installed; the JS twins are also covered by test_browser.py")
    ort_web = PARITY.parents[1] / "web" / "node_modules" / "onnxruntime-web"
    if not ort_web.is_dir():
        missing_tool(
            "web/node_modules is missing (make web): the learned segmenter's parity needs it"
        )
    done = subprocess.run(
        [node, "--test", str(PARITY / "parity.test.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# skipped 0" in done.stdout, done.stdout[-2000:]
