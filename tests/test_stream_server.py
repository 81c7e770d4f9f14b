"""WS /v1/stream's contract (raw MediaPipe frames + image size, start, flush, reset, errors) and
the segmenter settings that travel in the model's metadata to GET /v1/model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from islr.export import export_onnx
from islr.features.model_input import aspect_correct
from islr.inference import Engine, StreamConfig
from islr.landmarks import get_layout
from islr.modelfile import read_onnx_metadata, set_metadata
from islr.serving.app import ServeConfig, create_app
from tests.conftest import local_client
from tests.test_inference_support import tiny_run

WIDTH, HEIGHT = 640, 360  # a 16:9 video: the aspect step scales y by 0.5625


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    """The tiny (untrained, hands_pose75) model exported to ONNX."""
    out = tmp_path_factory.mktemp("model")
    return export_onnx(tiny_run(out / "run"), out / "model.onnx").path


@pytest.fixture(scope="module")
def client(onnx_model):
    # threshold 0.9: the untrained model's segments are "unknown" (its best guess is about 0.5)
    config = ServeConfig(max_stream_errors=5, stream_overrides={"threshold": 0.9})
    with local_client(create_app(onnx_model, config)) as c:
        yield c


def raw_stream() -> list[np.ndarray]:
    """Raw MediaPipe-like hands_pose75 frames: rest, a sign (the right hand moving), rest."""
    layout = get_layout("hands_pose75")
    rng = np.random.default_rng(3)
    frames = []
    for i in range(75):
        frame = np.full((layout.n_points, 3), np.nan, dtype=np.float32)
        frame[layout.slice("pose")] = rng.uniform(0.3, 0.7, (33, 3))
        frame[layout.index("pose", 11)] = (0.6, 0.5, 0)
        frame[layout.index("pose", 12)] = (0.4, 0.5, 0)
        if 15 <= i < 50:
            hand = rng.uniform(-0.05, 0.05, (21, 3)) + (0.5 + 0.15 * np.sin(i / 3), 0.6, 0)
            frame[layout.slice("right_hand")] = hand
        frames.append(frame)
    return frames


def as_json(frame: np.ndarray) -> list:
    return [None if np.isnan(p[0]) else p.tolist() for p in frame]


def run_stream(ws, messages: list[dict]) -> list[dict]:
    """Send ``messages`` then a flush; the events up to the flush's answer."""
    for message in messages:
        ws.send_json(message)
    ws.send_json({"flush": True})
    events = []
    while (event := ws.receive_json())["type"] != "flushed":
        events.append(event)
    return events


def frame_messages(frames: list[np.ndarray], **extra) -> list[dict]:
    return [{"frame": as_json(f), "t": i / 30, **extra} for i, f in enumerate(frames)]


def test_raw_frames_with_the_image_size_are_aspect_corrected_like_predict(client):
    raw = raw_stream()
    corrected = [aspect_correct(f, WIDTH, HEIGHT) for f in raw]
    size = {"image_width": WIDTH, "image_height": HEIGHT}
    with client.websocket_connect("/v1/stream") as ws:
        from_raw = run_stream(ws, frame_messages(raw, **size))
        ws.send_json({"reset": True})
        assert ws.receive_json() == {"type": "reset"}
        from_corrected = run_stream(ws, frame_messages(corrected, aspect_corrected=True))
        ws.send_json({"reset": True})
        ws.receive_json()
        # the raw frames declared corrected: the model sees other (distorted) input
        distorted = run_stream(ws, frame_messages(raw, aspect_corrected=True))
    assert from_raw == from_corrected
    kinds = [e["type"] for e in from_raw]
    # the untrained model is unsure: the one segment is "unknown", with its best guesses
    assert "partial" in kinds and kinds.count("unknown") == 1, kinds
    (unknown,) = [e for e in from_raw if e["type"] == "unknown"]
    assert set(unknown) == {"type", "start", "end", "top"} and len(unknown["top"]) == 3
    assert 0.5 <= unknown["start"] <= 0.6 and 1.6 <= unknown["end"] <= 1.7
    assert [e["type"] for e in distorted] == kinds and distorted != from_raw
    # the same frames in one POST /v1/predict go through the same aspect step
    body = {"frames": [as_json(f) for f in raw[16:50]], "image_width": WIDTH}
    body["image_height"] = HEIGHT
    assert client.post("/v1/predict", json=body).status_code == 200


def test_start_message_gives_the_size_once_and_restarts(client):
    raw = raw_stream()
    with client.websocket_connect("/v1/stream") as ws:
        expected = run_stream(ws, frame_messages(raw, image_width=WIDTH, image_height=HEIGHT))
        messages = frame_messages(raw[:30])  # half a sign, then a start: dropped
        start = {"layout": "hands_pose75", "image_width": WIDTH, "image_height": HEIGHT}
        for message in messages:
            ws.send_json({**message, "image_width": WIDTH, "image_height": HEIGHT})
        ws.send_json({"start": start})
        while (event := ws.receive_json())["type"] == "partial":
            pass
        assert event == {"type": "started", **start, "aspect_corrected": False, "threshold": 0.9}
        assert run_stream(ws, frame_messages(raw)) == expected
        # a frame's own size wins over the start message's (here: no correction)
        ws.send_json({"start": {"aspect_corrected": True}})
        assert ws.receive_json()["aspect_corrected"] is True
        assert run_stream(ws, frame_messages(raw, image_width=WIDTH, image_height=HEIGHT)) == (
            expected
        )


def test_start_sets_the_stream_threshold_until_the_next_start(client):
    size = {"image_width": WIDTH, "image_height": HEIGHT}
    messages = frame_messages(raw_stream(), **size)
    with client.websocket_connect("/v1/stream") as ws:
        served = run_stream(ws, messages)
        ws.send_json({"start": {"threshold": 0.0}})
        assert ws.receive_json()["threshold"] == 0.0
        lenient = run_stream(ws, messages)
        ws.send_json({"start": {}})  # a new stream without one: the server's again
        assert ws.receive_json()["threshold"] == 0.9
        assert run_stream(ws, messages) == served
    # the untrained model's one segment (best guess ~0.5): unknown at the server's 0.9, named at 0
    (unknown,) = [e for e in served if e["type"] == "unknown"]
    (sign,) = [e for e in lenient if e["type"] == "sign"]
    assert sign["label"] == unknown["top"][0]["label"] and sign["prob"] == unknown["top"][0]["prob"]
    assert (sign["start"], sign["end"]) == (unknown["start"], unknown["end"])


def test_flush_reports_the_open_segment_and_reset_drops_it(client):
    raw = raw_stream()[:45]  # the stream ends mid-sign
    size = {"image_width": WIDTH, "image_height": HEIGHT}
    with client.websocket_connect("/v1/stream") as ws:
        events = run_stream(ws, frame_messages(raw, **size))
        assert events[-1]["type"] == "unknown" and events[-1]["end"] == pytest.approx(44 / 30, 1e-3)
        for message in frame_messages(raw, **size):
            ws.send_json(message)
        ws.send_json({"reset": True})
        while ws.receive_json()["type"] != "reset":
            pass
        assert run_stream(ws, []) == []  # nothing open after the reset


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"frame": [None] * 75}, "image_width"),  # raw frame, no size, nothing declared
        ({"frame": [None] * 75, "image_width": 640}, "both image_width and image_height"),
        ({"frame": [None] * 75, "image_width": 0, "image_height": 1}, "positive"),
        ({"frame": [None] * 75, "image_width": "a", "image_height": 1}, "positive"),
        (
            {"frame": [None] * 75, "image_width": 1, "image_height": 1, "aspect_corrected": True},
            "not both",
        ),
        ({"frame": [None] * 75, "aspect_corrected": 1}, "true or false"),
        ({"frame": [None] * 75, "aspect_corrected": True, "t": "now"}, "seconds"),
        ({"start": []}, "start must be an object"),
        ({"start": {"layout": "nope"}}, "nope"),
        ({"start": {"layout": 3}}, "layout name"),
        ({"start": {"threshold": 1.5}}, "threshold must be a number from 0 to 1"),
        ({"start": {"threshold": "strict"}}, "threshold must be a number from 0 to 1"),
        ({"hello": 1}, "expected"),
    ],
)
def test_bad_messages_get_clear_errors(client, message, error):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json(message)
        event = ws.receive_json()
        assert event["type"] == "error" and error in event["message"], event
        ws.send_json({"reset": True})  # the socket survives
        assert ws.receive_json() == {"type": "reset"}


def test_the_socket_closes_after_max_stream_errors(client):
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/v1/stream") as ws:
        for _ in range(5):
            ws.send_json({"frame": [None] * 75})
            assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


def test_export_writes_the_stream_settings_and_the_server_serves_them(onnx_model, client):
    meta = read_onnx_metadata(onnx_model)
    assert meta["stream"] == StreamConfig().to_dict()
    assert Engine.load(onnx_model).stream == StreamConfig()
    with local_client(create_app(onnx_model)) as c:
        served = c.get("/v1/model").json()
    assert served["stream"] == StreamConfig().to_dict() and served["stream_source"] == "model"
    served = client.get("/v1/model").json()  # islr serve --threshold 0.9
    assert served["stream"] == {**StreamConfig().to_dict(), "threshold": 0.9}


def test_the_models_settings_drive_the_socket_and_a_server_override_wins(onnx_model, tmp_path):
    import onnx

    # a model whose metadata carries other settings (as a learned calibration will write them)
    proto = onnx.load(str(onnx_model))
    meta = read_onnx_metadata(onnx_model)
    settings = {**meta["stream"], "threshold": 0.0, "top_k": 2, "a_later_setting": 1}
    set_metadata(proto, {**meta, "stream": settings})
    custom = tmp_path / "custom.onnx"
    onnx.save(proto, str(custom))
    raw = frame_messages(raw_stream(), image_width=WIDTH, image_height=HEIGHT)

    with local_client(create_app(custom)) as c, c.websocket_connect("/v1/stream") as ws:
        stream = c.get("/v1/model").json()["stream"]
        events = run_stream(ws, raw)
    assert stream["threshold"] == 0.0 and stream["top_k"] == 2 and "a_later_setting" not in stream
    (sign,) = [e for e in events if e["type"] == "sign"]  # threshold 0: a sign, not unknown
    assert len(sign["top"]) == 2

    config = ServeConfig(stream_overrides={"threshold": 0.99})  # islr serve --threshold 0.99
    with local_client(create_app(custom, config)) as c, c.websocket_connect("/v1/stream") as ws:
        served = c.get("/v1/model").json()
        events = run_stream(ws, raw)
    assert served["stream"] == {**stream, "threshold": 0.99} and served["stream_source"] == "server"
    assert [e["type"] for e in events].count("unknown") == 1


def test_broken_stream_settings_are_a_model_error(onnx_model, tmp_path):
    from islr.errors import ConfigError, ModelError

    meta = read_onnx_metadata(onnx_model)
    text = json.dumps({**meta, "stream": {"threshold": 2}})
    with pytest.raises(ModelError, match="stream settings"):
        Engine(None, json.loads(text), "x.onnx")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown stream settings"):
        ServeConfig(stream_overrides={"treshold": 0.3}).stream_config(Engine.load(onnx_model))
    old = {k: v for k, v in meta.items() if k != "stream"}  # exported before the settings
    assert Engine(None, old, "old.onnx").stream == StreamConfig()  # type: ignore[arg-type]


def test_the_contract_is_in_the_docs(client):
    description = client.get("/openapi.json").json()["info"]["description"]
    for text in ('"image_width"', '"aspect_corrected": true', '"type": "unknown"', '"flush"'):
        assert text in description


def test_a_segmenter_beside_the_model_is_served_and_segments_the_socket(onnx_model, tmp_path):
    """MODEL.segmenter.onnx beside MODEL.onnx: GET /v1/model describes it, GET
    /v1/segmenter.onnx serves it, and WS /v1/stream segments with it: the events of
    islr.streaming.StreamSegmenter with that segmenter, in order."""
    import shutil

    from islr.inference.segmenter import SegmenterModel
    from islr.pretrained import PRETRAINED_DIR
    from islr.streaming import StreamSegmenter

    shipped = PRETRAINED_DIR / "include50.segmenter.onnx"  # hands_pose75, as the tiny model
    model = tmp_path / "model.onnx"
    shutil.copyfile(onnx_model, model)
    shutil.copyfile(shipped, tmp_path / "model.segmenter.onnx")
    raw = raw_stream()
    with local_client(create_app(model)) as c, c.websocket_connect("/v1/stream") as ws:
        info = c.get("/v1/model").json()
        served = c.get("/v1/segmenter.onnx").content
        events = run_stream(ws, frame_messages(raw, image_width=WIDTH, image_height=HEIGHT))
    assert served == shipped.read_bytes()
    assert info["stream"]["segmenter"] == "learned"
    assert info["segmenter"]["url"] == "/v1/segmenter.onnx"
    assert info["segmenter"]["window"] > info["segmenter"]["lookahead"] > 0

    engine = Engine.load(model)
    assert engine.segmenter is not None
    segmenter = StreamSegmenter(
        engine.model_layout,
        engine.labels,
        lambda frames: engine.predict_batch([frames])[0],
        engine.stream,
        SegmenterModel.load(shipped, engine.model_layout),
    )
    expected = []
    for i, frame in enumerate(raw):
        expected += segmenter.push(aspect_correct(frame[None], WIDTH, HEIGHT)[0], i / 30)
    expected += segmenter.flush()
    assert [e for e in events if e["type"] != "flushed"] == expected
    assert any(e["type"] in ("sign", "unknown") for e in expected)

    with local_client(create_app(onnx_model)) as c:  # no segmenter beside it: the heuristic
        assert c.get("/v1/model").json()["segmenter"] is None
        assert c.get("/v1/segmenter.onnx").status_code == 404
