"""`islr serve`: the HTTP API and WebSocket with TestClient, fuzzing, and a real uvicorn process."""

from __future__ import annotations

import json
import re

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from islr.inference import Engine
from islr.landmarks import LandmarkSequence
from islr.serving.app import (
    ServeConfig,
    create_app,
    looks_like_video,
    missing_web_assets,
)
from tests.conftest import islr_serve, local_client, shared_data
from tests.test_inference_support import synthetic_run, synthetic_sign, tiny_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def client(run_dir, tmp_path_factory):
    config = ServeConfig(max_upload_mb=0.05, max_frames=200)
    app = create_app(run_dir, config, onnx_cache=tmp_path_factory.mktemp("onnx-cache"))
    with local_client(app) as c:
        yield c


JSON = {"content-type": "application/json"}


def _frames(n_frames: int = 20, n_points: int = 75, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    frames = rng.random((n_frames, n_points, 3)).round(4).tolist()
    for frame in frames[::3]:
        frame[40] = None  # a point not detected
    return frames


def test_health_model_and_onnx(client):
    assert client.get("/healthz").json()["status"] == "ok"
    meta = client.get("/v1/model").json()
    for key in ("labels", "layout", "n_points", "n_coords", "seq_len", "version"):
        assert key in meta
    assert meta["layout"]["name"] == "hands_pose75" and meta["backend"] == "torch"
    response = client.get("/v1/model.onnx")
    assert response.status_code == 200
    engine = Engine.from_onnx_bytes(response.content)
    assert engine.labels == meta["labels"] and engine.seq_len == meta["seq_len"]


def test_predict_matches_the_engine(client, run_dir):
    frames = _frames()
    body = client.post("/v1/predict", json={"frames": frames, "top_k": 3}).json()
    assert len(body["top"]) == 3 and body["label"] == body["top"][0]["label"]
    assert body["n_frames"] == 20 and body["timing_ms"]["model"] >= 0
    data = np.array([[p if p is not None else [np.nan] * 3 for p in f] for f in frames])
    expected = Engine.load(run_dir).predict(data.astype(np.float32), top_k=3)
    assert [t["label"] for t in body["top"]] == [label for label, _ in expected]
    np.testing.assert_allclose(
        [t["prob"] for t in body["top"]], [p for _, p in expected], atol=1e-5
    )


def test_predict_maps_another_layout_and_takes_image_size(client, run_dir):
    frames = _frames(n_points=136)
    body = {"frames": frames, "layout": "holistic136", "image_width": 640, "image_height": 480}
    response = client.post("/v1/predict", json={**body, "top_k": 5})
    assert response.status_code == 200, response.text
    # the same as the engine given the holistic136 sequence with its image size
    data = np.array([[p if p is not None else [np.nan] * 3 for p in f] for f in frames])
    seq = LandmarkSequence(
        data.astype(np.float32), "holistic136", extra={"image_width": 640, "image_height": 480}
    )
    expected = Engine.load(run_dir).predict(seq, top_k=5)
    got = response.json()["top"]
    assert [t["label"] for t in got] == [label for label, _ in expected]
    np.testing.assert_allclose([t["prob"] for t in got], [p for _, p in expected], atol=1e-5)
    # and the image size is used: without it (no aspect correction) the probabilities differ
    plain = client.post("/v1/predict", json={"frames": frames, "layout": "holistic136"}).json()
    by_label = {t["label"]: t["prob"] for t in plain["top"]}
    assert any(abs(by_label[t["label"]] - t["prob"]) > 1e-6 for t in got)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ('{"frames": [[[0.1, 0.2, NaN]]]}', 422, "NaN or Infinity"),
        ('{"frames": [[[0.1, 0.2, Infinity]]]}', 422, "NaN or Infinity"),
        ('{"frames": [[[0.1, 0.2', 422, "JSON"),
        ('{"frames": []}', 422, "at least 1 item"),
        ('{"frames": [[[0.1, 0.2, 0.3]]]}', 422, "75 points"),
        ('{"frames": [[[0.1, 0.2, 0.3], [0.1, 0.2]]]}', 422, "same number"),
        ('{"frames": [[[0.1, 0.2, 0.3, 0.4]]]}', 422, "2 or 3 coordinates"),
        ('{"frames": [[[0.1, 0.2, 0.3]]], "layout": "nope"}', 422, "unknown layout"),
        ('{"frames": [[[0.1, 0.2, 0.3]]], "top_k": 0}', 422, "greater than or equal to 1"),
        ('{"frames": [[[1, 2, 3]]], "image_width": 640}', 422, "image_height"),
        ("[1, 2]", 422, "should be an object"),
        ("not json", 422, "Invalid JSON"),
    ],
)
def test_bad_predict_requests_are_4xx_with_a_message(client, body, status, message):
    response = client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert message in json.dumps(response.json()["detail"])


def test_too_many_frames(client):
    response = client.post("/v1/predict", json={"frames": _frames(201)})
    assert response.status_code == 422 and "more than this server takes" in response.text


def test_video_upload_checks(client):
    files = {"file": ("notes.txt", b"hello", "text/plain")}
    assert client.post("/v1/predict/video", files=files).status_code == 415
    files = {"file": ("clip.mp4", b"definitely not a video file", "video/mp4")}
    response = client.post("/v1/predict/video", files=files)
    assert response.status_code == 415 and "not a video container" in response.text
    big = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200_000  # over the 0.05 MB test limit
    response = client.post("/v1/predict/video", files={"file": ("big.mp4", big, "video/mp4")})
    assert response.status_code == 413 and "larger than" in response.text
    response = client.post("/v1/predict/video", data={"top_k": "3"})
    assert response.status_code in (400, 422)
    truncated = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000  # looks like MP4, decodes to nothing
    response = client.post("/v1/predict/video", files={"file": ("t.mp4", truncated, "video/mp4")})
    assert response.status_code == 422, response.text


def test_looks_like_video():
    assert looks_like_video(b"\x00\x00\x00\x20ftypisom")
    assert looks_like_video(b"\x1a\x45\xdf\xa3\x01\x00")
    assert not looks_like_video(b"<html>")


def test_websocket_bad_messages_do_not_close_the_stream(client):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_bytes(b"\x00\x01")
        assert "JSON text" in ws.receive_json()["message"]
        ws.send_json({"frame": [[0.1, 0.2]] * 3})
        assert "75 points" in ws.receive_json()["message"]
        ws.send_json({"frame": [["a", 1]] + [None] * 74})
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"reset": True})
        assert ws.receive_json() == {"type": "reset"}
        ws.send_json({"frame": [None] * 75, "aspect_corrected": True})  # nothing detected
        ws.send_json({"flush": True})  # no segment open: only the answer
        assert ws.receive_json() == {"type": "flushed"}
        ws.send_json({"reset": True})
        assert ws.receive_json() == {"type": "reset"}


def test_page_static_and_docs(client):
    page = client.get("/")
    assert page.status_code == 200
    if not missing_web_assets():
        assert "static/app.js" in page.text
        assert client.get("/static/app.js").status_code == 200
    else:
        assert "make web" in page.text and "make wheel" in page.text
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/video", "/v1/model", "/healthz"} <= set(schema["paths"])


def test_docs_load_only_local_assets(client):
    """/docs works offline: every script, style, icon and the schema it loads is served here."""
    html = client.get("/docs").text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    urls += re.findall(r"""url: ["']([^"']+)["']""", html)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls), html
    remote = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert not remote, f"/docs loads from elsewhere: {remote}"
    for url in urls:
        assert client.get(url).status_code == 200, url


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)
bodies = (
    st.fixed_dictionaries(
        {"frames": json_values},
        optional={
            "layout": json_values,
            "top_k": json_values,
            "image_width": json_values,
            "image_height": json_values,
        },
    )
    | json_values
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_fuzzed_predict_bodies_never_give_5xx(client, body):
    # json.dumps writes inf as Infinity (not JSON, but Python's parser reads it): rejected too
    response = client.post(
        "/v1/predict", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, (body, response.text)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n_frames=st.integers(1, 5),
    points=st.lists(
        st.none() | st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=3),
        min_size=75,
        max_size=75,
    ),
)
def test_fuzzed_well_formed_frames_always_predict(client, n_frames, points):
    n_coords = {len(p) for p in points if p is not None}
    response = client.post("/v1/predict", json={"frames": [points] * n_frames})
    # nobody detected in any frame (every point null) is no sign: 422
    expected = 200 if len(n_coords) == 1 else 422
    assert response.status_code == expected, response.text


@pytest.mark.slow
def test_websocket_stream_of_a_synthetic_sign_gives_one_sign(tmp_path):
    app = create_app(synthetic_run(), onnx_cache=tmp_path)
    seq = synthetic_sign(1, 77, signer=5)
    rest = [seq.data[0].tolist()] * 20
    frames = rest + seq.data.tolist() + [seq.data[-1].tolist()] * 30
    frames = [[None if np.isnan(p[0]) else p for p in f] for f in frames]
    events = []
    with local_client(app) as c, c.websocket_connect("/v1/stream") as ws:
        for frame in frames:
            # the synthetic signs are already in units of image width
            ws.send_json({"frame": frame, "layout": "holistic136", "aspect_corrected": True})
        ws.send_json({"flush": True})
        ws.send_json({"reset": True})
        while (event := ws.receive_json())["type"] != "reset":
            events.append(event)
    signs = [e for e in events if e["type"] == "sign"]
    assert [s["label"] for s in signs] == [app.state.islr.engine.labels[1]], events
    assert any(e["type"] == "partial" for e in events)


@pytest.mark.slow
def test_video_upload_of_a_real_video(tmp_path, run_dir, video_extra):
    video = shared_data("videos", "test_video.mp4")
    app = create_app(run_dir, onnx_cache=tmp_path)
    with local_client(app) as c:
        response = c.post(
            "/v1/predict/video", files={"file": ("sign.mp4", video.read_bytes(), "video/mp4")}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["n_frames"] == 58 and body["timing_ms"]["extract"] > 0


def test_real_uvicorn_server(run_dir, tmp_path):
    """`islr serve` as a subprocess on a loopback port: HTTP, WebSocket, clean shutdown."""
    from websockets.sync.client import connect

    with islr_serve(run_dir, tmp_path, "--threshold", "0.7", start_timeout=60) as url:
        base = url.rstrip("/")
        # --threshold overrides the model's stream settings, for the socket and the page
        stream = httpx.get(f"{base}/v1/model", timeout=10).json()["stream"]
        assert stream["threshold"] == 0.7 and stream["min_sign_seconds"] > 0
        response = httpx.post(f"{base}/v1/predict", json={"frames": _frames()}, timeout=10)
        assert response.status_code == 200 and len(response.json()["top"]) == 5
        bad = httpx.post(f"{base}/v1/predict", content=b"{", headers=JSON, timeout=10)
        assert bad.status_code == 422
        # JSON content types only: a form or text/plain POST (no CORS preflight) is refused
        plain = httpx.post(f"{base}/v1/predict", content=b"{}", timeout=10)
        assert plain.status_code == 415 and "application/json" in plain.text
        with connect(base.replace("http://", "ws://") + "/v1/stream") as ws:
            ws.send("garbage")
            assert json.loads(ws.recv(timeout=10))["type"] == "error"
            ws.send(json.dumps({"reset": True}))
            assert json.loads(ws.recv(timeout=10)) == {"type": "reset"}
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # still alive
