"""The red-team cases of the server and CLI hardening, replayed: cross-site writes and streams,
DNS rebinding, malformed and oversized input (never a 500), bounded memory, labels that can always
be removed, batches that survive one bad file, workers that die with their parent.

In-process cases use a TestClient; the limits that only a real server shows (a 90 MB body, a
socket's memory, disconnects) run `islr serve` on 127.0.0.1. All traffic stays on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra (builds the test model)")
pytest.importorskip("onnx", reason="needs onnx, the [train] extra")

from starlette.websockets import WebSocketDisconnect  # noqa: E402

from islr.landmarks.labels import LabelError, normalise_label  # noqa: E402
from islr.serving.app import ServeConfig, create_app  # noqa: E402
from tests.conftest import (  # noqa: E402
    LOCAL_ORIGIN,
    islr_serve_process,
    local_client,
)
from tests.test_inference_support import (  # noqa: E402
    synthetic_onnx,
    tiny_run,
    unseen_synthetic_sign,
)

JSON = {"content-type": "application/json"}
EVIL = "http://localhost:8999"  # another page on the same machine, as in the red-team run
ISLR = [sys.executable, "-c", "from islr.cli import main; main()"]


def take(seq) -> dict:
    frames = [[None if np.isnan(p[0]) else p.tolist() for p in f] for f in seq.data]
    return {"frames": frames, "layout": "holistic136"}


def takes(n: int = 3) -> list[dict]:
    return [take(unseen_synthetic_sign(i, signer=5 + i % 2)) for i in range(n)]


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "model.onnx"
    shutil.copy(synthetic_onnx(), path)
    return path


@pytest.fixture
def client(model):
    config = ServeConfig(allow_enroll=True, allow_origins=("https://app.example.org",))
    with local_client(create_app(model, config)) as c:
        yield c


def added(client) -> list[str]:
    signs = client.get("/v1/vocabulary").json()["signs"]
    return [s["label"] for s in signs if s["kind"] == "added"]


# ------------------------------------------------------------------ origins, hosts and the token


def test_cross_origin_writes_and_streams_are_refused(client):
    body = {"label": "wave", "takes": takes()}
    refused = client.post("/v1/vocabulary", json=body, headers={"origin": EVIL})
    assert refused.status_code == 403 and "page at http://localhost:8999" in refused.text
    for method, path in [("POST", "/v1/predict"), ("DELETE", "/v1/vocabulary?label=wave")]:
        assert client.request(method, path, headers={"origin": EVIL}).status_code == 403
    assert added(client) == []
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/v1/stream", headers={"origin": EVIL}),
    ):
        pass
    assert closed.value.code == 1008
    # the server's own page, under either loopback name, and an --allow-origin value may
    for origin in (LOCAL_ORIGIN, "http://localhost:8000", "https://app.example.org"):
        with client.websocket_connect("/v1/stream", headers={"origin": origin}) as ws:
            ws.send_json({"reset": True})
            assert ws.receive_json() == {"type": "reset"}
    saved = client.post("/v1/vocabulary", json=body, headers={"origin": LOCAL_ORIGIN})
    assert saved.status_code == 200, saved.text
    assert added(client) == ["wave"]


def test_a_rebound_host_name_is_refused(client):
    for path in ("/v1/model", "/healthz", "/"):
        response = client.get(path, headers={"host": "evil.example"})
        assert response.status_code == 403 and "evil.example" in response.text
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("ws://evil.example/v1/stream"),
    ):
        pass
    # IP addresses (which cannot be rebound), localhost and --allow-origin's host are fine
    for host in (
        "127.0.0.1:8000",
        "[::1]:8000",
        "192.168.1.20:8000",
        "localhost",
        "app.example.org",
    ):
        assert client.get("/healthz", headers={"host": host}).status_code == 200, host


def test_writes_need_json_and_the_write_token(client):
    body = json.dumps({"label": "wave", "takes": takes()})
    # a cross-site form or text/plain POST needs no CORS preflight: JSON only
    plain = client.post("/v1/vocabulary", content=body, headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    for headers in ({"authorization": ""}, {"authorization": "Bearer wrong-token"}):
        refused = client.post("/v1/vocabulary", content=body, headers={**JSON, **headers})
        assert refused.status_code == 401 and "write token" in refused.text
        assert client.delete("/v1/vocabulary?label=wave", headers=headers).status_code == 401
    assert added(client) == []
    # reading and checking need no token
    anonymous = {"authorization": ""}
    assert client.get("/v1/vocabulary", headers=anonymous).status_code == 200
    check = client.post("/v1/vocabulary/check", content=body, headers={**JSON, **anonymous})
    assert check.status_code == 200
    assert client.post("/v1/vocabulary", content=body, headers=JSON).status_code == 200


def test_the_page_carries_the_write_token_and_is_not_cached(client):
    from islr.serving.app import missing_web_assets

    if missing_web_assets():
        pytest.skip("the page's vendored assets are absent (make web)")
    page = client.get("/")
    token = client.app.state.islr.write_token
    assert f'<meta name="islr-write-token" content="{token}">' in page.text
    assert page.headers["cache-control"] == "no-store"


# ---------------------------------------------------------------- malformed input: 422, not 500

DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "1" + "0" * 5000
FRAME = json.dumps([[0.5, 0.5, 0.0]] * 136)  # the test model: holistic136
BAD_BODIES = {
    "image size 1e309": f'{{"frames": [{FRAME}], "image_width": 1e309, "image_height": 1e309}}',
    "image size 10**400": f'{{"frames": [{FRAME}], "image_width": 1{"0" * 400}, "image_height": 4}}',
    "100k-deep JSON": f'{{"frames": {DEEP}}}',
    "5000-digit integer": f'{{"frames": [[[{HUGE_INT}, 0.5, 0]]]}}',
    "string coordinates": '{"frames": [[["0.5", "0.5", "0"]]]}',
    "boolean coordinates": '{"frames": [[[true, false, true]]]}',
    "nobody in any frame": f'{{"frames": [{json.dumps([None] * 136)}]}}',
}


WHY = {
    "image size 1e309": "valid integer",
    "image size 10**400": "less than or equal to 100000",
    "100k-deep JSON": "recursion limit",
    "5000-digit integer": "number out of range",
    "string coordinates": "valid number",
    "boolean coordinates": "valid number",
    "nobody in any frame": "no landmarks in any frame",
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_predict_bodies_are_422(client, case):
    response = client.post("/v1/predict", content=BAD_BODIES[case], headers=JSON)
    assert response.status_code == 422, response.text
    assert WHY[case] in response.text, response.text


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
@pytest.mark.parametrize("path", ["/v1/vocabulary/check", "/v1/vocabulary"])
def test_bad_takes_are_422(client, path, case):
    bad_take = BAD_BODIES[case]
    body = f'{{"label": "x", "takes": [{bad_take}]}}'
    if case == "100k-deep JSON":
        body = f'{{"label": "x", "takes": {DEEP}}}'  # deep where the takes are expected
    response = client.post(path, content=body, headers=JSON)
    assert response.status_code == 422, (case, response.text)
    assert WHY[case] in response.text, response.text
    assert added(client) == []


def test_the_same_inputs_over_the_websocket_are_error_events(client):
    frame = [[0.5, 0.5, 0.0]] * 136
    messages = [
        json.dumps({"frame": frame, "image_width": 1e309, "image_height": 480}),
        f'{{"frame": {FRAME}, "image_width": 1{"0" * 400}, "image_height": 480}}',
        f'{{"frame": {DEEP}}}',
        f'{{"frame": [[{HUGE_INT}, 0.5, 0]], "aspect_corrected": true}}',
        f'{{"frame": {FRAME}, "t": 1{"0" * 400}, "aspect_corrected": true}}',
        json.dumps({"frame": [["0.5", "0.5", "0"]] * 136, "aspect_corrected": True}),
        json.dumps({"frame": [[True, False, True]] * 136, "aspect_corrected": True}),
        "x" * (2 * 1024 * 1024),  # larger than a message may be
    ]
    with client.websocket_connect("/v1/stream") as ws:
        for message in messages:
            ws.send_text(message)
            event = ws.receive_json()
            assert event["type"] == "error", (message[:80], event)
        ws.send_json({"reset": True})  # still open and working
        assert ws.receive_json() == {"type": "reset"}


def test_too_many_bad_messages_close_the_socket_with_a_close_frame(model):
    app = create_app(model, ServeConfig(max_stream_errors=3))
    with local_client(app) as client, client.websocket_connect("/v1/stream") as ws:
        for _ in range(3):
            ws.send_text(DEEP)
            assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


def test_frames_must_come_in_time_order(client):
    frame = {"frame": [[0.5, 0.5, 0.0]] * 136, "aspect_corrected": True}
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({**frame, "t": 1.0})
        for t in (1.0, 0.5, 1.001):  # equal, earlier, faster than 240 frames a second
            ws.send_json({**frame, "t": t})
            event = ws.receive_json()
            assert event["type"] == "error" and "time order" in event["message"], event
        ws.send_json({"reset": True})
        assert ws.receive_json() == {"type": "reset"}
        ws.send_json({**frame, "t": 0.0})  # a new clock after a reset
        ws.send_json({"flush": True})
        assert ws.receive_json()["type"] in ("flushed", "rest")


def test_an_idle_socket_is_closed(model):
    app = create_app(model, ServeConfig(stream_idle_s=0.5))
    with local_client(app) as client, client.websocket_connect("/v1/stream") as ws:
        time.sleep(1.0)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1001


def _black_clip(path: Path, seconds: float, fps: float = 10.0) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    frame = np.zeros((120, 160, 3), np.uint8)
    for _ in range(int(seconds * fps)):
        writer.write(frame)
    writer.release()
    return path


def test_a_long_video_is_refused_before_it_is_decoded(model, tmp_path, video_extra):
    clip = _black_clip(tmp_path / "long.mp4", 120)  # 120 s: the red team's 42 s of CPU
    app = create_app(model, ServeConfig(max_video_seconds=60))
    with local_client(app) as client:
        t0 = time.perf_counter()
        files = {"file": ("long.mp4", clip.read_bytes(), "video/mp4")}
        response = client.post("/v1/predict/video", files=files)
        seconds = time.perf_counter() - t0
    assert response.status_code == 422 and "longer than 60 s" in response.text, response.text
    assert seconds < 5, seconds


def test_video_extraction_stops_at_its_bounds(tmp_path, video_extra):
    from islr.errors import VideoError
    from islr.extract import extract_video

    clip = _black_clip(tmp_path / "clip.mp4", 3)
    with pytest.raises(VideoError, match="more than 5 frames"):
        extract_video(clip, max_frames=5)
    with pytest.raises(VideoError, match="longer than 1 s"):
        extract_video(clip, max_seconds=1)
    calls = []
    with pytest.raises(VideoError, match="stopped"):
        extract_video(clip, stop=lambda: calls.append(1) or len(calls) > 3)
    assert len(calls) == 4  # polled every frame, stopped at once


# -------------------------------------------------------------------------------- labels


@pytest.mark.parametrize("label", ["big / large", ".", "..", "a/b/c", "50%?#x"])
def test_every_label_can_be_added_renamed_and_removed(client, label):
    saved = client.post("/v1/vocabulary", json={"label": label, "takes": takes()})
    assert saved.status_code == 200, saved.text
    assert added(client) == [label]
    renamed = client.patch("/v1/vocabulary", params={"label": label}, json={"label": "renamed"})
    assert renamed.status_code == 200, renamed.text
    assert added(client) == ["renamed"]
    back = client.patch("/v1/vocabulary", params={"label": "renamed"}, json={"label": label})
    assert back.status_code == 200 and added(client) == [label]
    removed = client.delete("/v1/vocabulary", params={"label": label})
    assert removed.status_code == 200, removed.text
    assert added(client) == []
    assert client.delete("/v1/vocabulary", params={"label": label}).status_code == 404


def test_takes_of_the_shipped_big_large_can_be_removed(tmp_path):
    """``big / large`` is one of include50's own signs: a user's takes of it are added examples,
    which the page's Remove (``DELETE ?label=``) takes away again."""
    config = ServeConfig(allow_enroll=True, vocabulary=tmp_path / "include50.vocab.json")
    with local_client(create_app("include50", config)) as client:
        body = {"label": "big / large", "takes": takes(), "force": True}
        saved = client.post("/v1/vocabulary", json=body)
        assert saved.status_code == 200, saved.text
        signs = {s["label"]: s for s in client.get("/v1/vocabulary").json()["signs"]}
        assert signs["big / large"]["kind"] == "known" and signs["big / large"]["examples"] == 3
        removed = client.delete("/v1/vocabulary", params={"label": "big / large"})
        assert removed.status_code == 200, removed.text
        signs = {s["label"]: s for s in removed.json()["signs"]}
        assert signs["big / large"]["examples"] == 0  # the model's own sign stays


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  big   /  large ", "big / large"),
        ("cafe\u0301", "caf\u00e9"),  # NFD -> NFC
        ("bank\u00a0\u2003note", "bank note"),  # other spaces: one space
        ("\tfootball\n", "football"),  # trimmed
    ],
)
def test_labels_are_normalised(raw, stored):
    assert normalise_label(raw) == stored


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("ba\u200bnk", "invisible formatting"),  # zero-width space
        ("\u202egnab", "invisible formatting"),  # right-to-left override
        ("ba\x00nk", "control"),
        ("two\nlines", "control"),
        ("a\u2028b", "line separator"),
        ("x" * 65, "at most 64"),
        ("   ", "empty"),
        (3, "must be text"),
    ],
)
def test_labels_that_are_refused(raw, why):
    with pytest.raises(LabelError, match=why):
        normalise_label(raw)


def test_the_api_stores_one_form_of_a_label(client):
    refused = client.post("/v1/vocabulary", json={"label": "ba\u200bnk", "takes": takes()})
    assert refused.status_code == 422 and "invisible" in refused.text
    for label in ("cafe\u0301", "caf\u00e9", " caf\u00e9 "):  # the same name typed three ways
        response = client.post("/v1/vocabulary", json={"label": label, "takes": takes(1)})
        assert response.status_code == 200, response.text
    signs = [s for s in client.get("/v1/vocabulary").json()["signs"] if s["kind"] == "added"]
    assert [(s["label"], s["examples"]) for s in signs] == [("caf\u00e9", 3)]
    # found by any of its forms
    assert client.delete("/v1/vocabulary", params={"label": "cafe\u0301"}).status_code == 200
    assert added(client) == []


def test_a_label_stored_before_the_normalisation_stays_removable(model):
    with local_client(create_app(model, ServeConfig(allow_enroll=True))) as client:
        assert (
            client.post("/v1/vocabulary", json={"label": "wave", "takes": takes()}).status_code
            == 200
        )
    file = model.with_name("model.vocab.json")
    stored = json.loads(file.read_text())
    odd = "wa\u200bve\u202e"  # what an older islr let through
    stored["signs"][0]["label"], stored["head"] = odd, None
    file.write_text(json.dumps(stored))
    with local_client(create_app(model, ServeConfig(allow_enroll=True))) as client:
        assert added(client) == [odd]
        renamed = client.patch("/v1/vocabulary", params={"label": odd}, json={"label": "wave 2"})
        assert renamed.status_code == 200, renamed.text
        assert client.delete("/v1/vocabulary", params={"label": "wave 2"}).status_code == 200
        assert added(client) == []


def test_an_imported_file_with_a_refused_label_is_a_failure_and_the_rest_import(tmp_path):
    from islr.datasets.importers import import_include_json

    src = tmp_path / "json"
    src.mkdir()
    frame = [0.5] * 75
    for name, label in [("a.json", "bank"), ("b.json", "ba\u200bnk"), ("c.json", "loud")]:
        body = {"label": label, "uid": f"{name[0]}_1", "pose_x": [frame[:33]] * 3,
                "pose_y": [frame[:33]] * 3, "hand1_x": [frame[:21]] * 3,
                "hand1_y": [frame[:21]] * 3, "hand2_x": [frame[:21]] * 3,
                "hand2_y": [frame[:21]] * 3}  # fmt: skip
        (src / name).write_text(json.dumps(body))
    summary = import_include_json(src, tmp_path / "cache", split="train")
    assert summary.imported == 2, summary
    (failure,) = summary.failures
    assert failure[0].endswith("b.json") and "invisible" in failure[1]


# ------------------------------------------------------------------------------------ fuzzing

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers()
    | st.sampled_from([10**400, -(10**30), 1e308, 2**63])
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
points = st.none() | st.lists(json_values | st.floats(-2, 2), min_size=0, max_size=4)
landmark_bodies = st.fixed_dictionaries(
    {"frames": st.lists(st.lists(points, min_size=1, max_size=3), max_size=3) | json_values},
    optional={
        "layout": st.sampled_from(["hands_pose75", "holistic136", "nope"]) | json_values,
        "top_k": json_values,
        "image_width": json_values,
        "image_height": json_values,
    },
)
labels = st.text(max_size=12) | st.sampled_from(["big / large", ".", "..", "", " ", "\u202e"])
raw_bodies = st.sampled_from(
    ["", "{", "[]", "null", DEEP[:20_000] + DEEP[-20_000:], HUGE_INT, "\x00", "\ud800"]
)


def _encoded(body) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return json.dumps(body).encode()  # writes inf/nan as Infinity/NaN: refused too


FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "model.onnx"
    shutil.copy(synthetic_onnx(), path)
    config = ServeConfig(allow_enroll=True, max_stream_errors=10**9)
    with local_client(create_app(path, config)) as c:
        yield c


@settings(FUZZ, max_examples=700)
@given(body=landmark_bodies | json_values | raw_bodies)
def test_fuzz_predict(fuzz_client, body):
    response = fuzz_client.post("/v1/predict", content=_encoded(body), headers=JSON)
    assert response.status_code < 500, (body, response.text)


@settings(FUZZ, max_examples=500)
@given(
    path=st.sampled_from(["/v1/vocabulary/check", "/v1/vocabulary"]),
    body=st.fixed_dictionaries(
        {"label": labels | json_values, "takes": st.lists(landmark_bodies, max_size=2)},
        optional={"force": json_values},
    )
    | json_values
    | raw_bodies,
)
def test_fuzz_vocabulary_writes(fuzz_client, path, body):
    response = fuzz_client.post(path, content=_encoded(body), headers=JSON)
    assert response.status_code < 500, (body, response.text)


@settings(FUZZ, max_examples=300)
@given(
    method=st.sampled_from(["DELETE", "PATCH"]),
    label=labels,
    by_path=st.booleans(),
    body=st.fixed_dictionaries({"label": labels | json_values}) | json_values | raw_bodies,
)
def test_fuzz_remove_and_rename(fuzz_client, method, label, by_path, body):
    url = "/v1/vocabulary/" + quote(label, safe="") if by_path else "/v1/vocabulary"
    params = None if by_path else {"label": label}
    try:
        response = fuzz_client.request(
            method, url, params=params, content=_encoded(body), headers=JSON
        )
    except httpx.InvalidURL:
        return  # not a URL a client could send
    assert response.status_code < 500, (method, label, body, response.text)


@settings(FUZZ, max_examples=200)
@given(
    path=st.sampled_from(
        ["/healthz", "/v1/model", "/v1/model.onnx", "/v1/segmenter.onnx", "/v1/vocabulary", "/"]
    )
    | st.text(max_size=20).map(lambda s: "/" + s),
    query=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    method=st.sampled_from(["GET", "HEAD", "OPTIONS", "PUT", "POST"]),
)
def test_fuzz_other_routes(fuzz_client, path, query, method):
    try:
        response = fuzz_client.request(method, path, params=query)
    except httpx.InvalidURL:
        return  # not a URL a client could send
    assert response.status_code < 500, (method, path, response.text)


@settings(FUZZ, max_examples=100)
@given(
    name=st.sampled_from(["a.mp4", "b.webm", "c.txt", "", "d.MOV"]),
    head=st.sampled_from([b"", b"\x00\x00\x00\x18ftypmp42", b"\x1a\x45\xdf\xa3", b"RIFF"]),
    content=st.binary(max_size=300),
    top_k=st.text(max_size=4),
)
def test_fuzz_video_upload(fuzz_client, name, head, content, top_k):
    files = {"file": (name, head + content, "application/octet-stream")}
    response = fuzz_client.post("/v1/predict/video", files=files, data={"top_k": top_k})
    assert response.status_code < 500, (name, head + content, response.text)


stream_messages = (
    st.fixed_dictionaries(
        {"frame": st.lists(points, max_size=76) | json_values},
        optional={
            "t": json_values,
            "layout": json_values,
            "image_width": json_values,
            "image_height": json_values,
            "aspect_corrected": json_values,
        },
    )
    | st.fixed_dictionaries(
        {"start": st.dictionaries(st.sampled_from(["layout", "threshold"]), json_values)}
    )
    | st.fixed_dictionaries({"flush": json_values})
    | st.fixed_dictionaries({"reset": json_values})
    | json_values
    | raw_bodies
)
STREAM_EVENTS = {"partial", "sign", "unknown", "rest", "started", "flushed", "reset", "error"}


@settings(FUZZ, max_examples=400)
@given(messages=st.lists(stream_messages, min_size=1, max_size=3))
def test_fuzz_stream(fuzz_client, messages):
    with fuzz_client.websocket_connect("/v1/stream") as ws:
        for message in messages:
            ws.send_text(_encoded(message).decode("utf-8", "replace"))
        ws.send_text('{"reset": true}')  # every message is answered before this one
        while (event := ws.receive_json())["type"] != "reset":
            assert event["type"] in STREAM_EVENTS, event


# -------------------------------------------------------------- limits on a real server


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _raw_post(
    port: int, path: str, headers: str, body_chunks, timeout: float = 10
) -> tuple[bytes, int]:
    """POST over a bare socket (a client that sends what it likes), reading the answer while
    still sending; (the answer's first bytes, or b"" when the server reset the connection
    first, and the body bytes sent)."""
    answer: list[bytes] = []
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:

        def read() -> None:
            try:
                answer.append(s.recv(4096))
            except OSError:  # reset: the server stopped reading and closed
                answer.append(b"")

        reader = threading.Thread(target=read)
        reader.start()
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
        try:
            for chunk in body_chunks:
                if answer:
                    break
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed while we were still sending
        reader.join(timeout)
    return (answer[0] if answer else b""), sent


def test_a_chunked_body_over_the_limit_is_413(model):
    def body():
        yield b'{"frames": ['
        for _ in range(20):
            yield b"[[0.5, 0.5, 0.0]]," * 60_000  # ~1 MB each, 20 MB in all

    app = create_app(model, ServeConfig(max_json_mb=4))
    with local_client(app) as client:
        response = client.post("/v1/predict", content=body(), headers=JSON)
    assert response.status_code == 413 and "larger than this server takes" in response.text


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def test_a_90_mb_body_is_refused_within_a_second_while_healthz_answers(model, tmp_path):
    with islr_serve_process(model, tmp_path / "cache", start_timeout=90) as served:
        port = _port(served.url)
        health: list[float] = []
        stop = threading.Event()

        def poll_health() -> None:
            with httpx.Client(timeout=5) as http:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    if http.get(served.url + "healthz").status_code == 200:
                        health.append(time.perf_counter() - t0)
                    time.sleep(0.005)

        mb = b"[" + b"0.5," * (1024 * 1024 // 4)
        big = 90 * 1024 * 1024
        # declared: refused from its Content-Length, before a byte of the body is sent
        t0 = time.perf_counter()
        answer, _ = _raw_post(
            port,
            "/v1/predict",
            f"Content-Type: application/json\r\nContent-Length: {big}\r\n",
            iter(()),
        )
        declared_s = time.perf_counter() - t0
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        # chunked (no length): refused once the limit (16 MB) has arrived, while /healthz is
        # polled; the server closes with the rest unread, so the client may see a reset instead
        # of the 413 (413 itself: test_a_chunked_body_over_the_limit_is_413)
        poller = threading.Thread(target=poll_health)
        poller.start()
        while not health and poller.is_alive():  # polling before the upload begins
            time.sleep(0.01)
        try:
            chunk = b"%x\r\n%s\r\n" % (len(mb), mb)
            t0 = time.perf_counter()
            answer, sent = _raw_post(
                port,
                "/v1/predict",
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                (chunk for _ in range(90)),
            )
            chunked_s = time.perf_counter() - t0
            time.sleep(0.1)
        finally:
            stop.set()
            poller.join()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
        print(
            f"90 MB declared: {declared_s:.3f} s, chunked: {chunked_s:.3f} s after "
            f"{sent / 2**20:.0f} MB ({answer[:12]!r}); healthz max {max(health) * 1000:.0f} ms "
            f"over {len(health)}"
        )
        assert declared_s < 1.0 and chunked_s < 1.0
        # not asserted: that the client is cut off before all 90 MB are sent. The server stops
        # reading at 16 MB, but until its close reaches the socket the kernel keeps accepting
        # at loopback speed, and on a busy machine that is the whole body (seen in CI once)
        assert health and max(health) < 1.0
        assert httpx.get(served.url + "healthz", timeout=5).status_code == 200
        assert "Traceback" not in "".join(served.output)


@pytest.mark.slow
def test_one_socket_fed_100k_frames_with_a_constant_time_stays_within_20_mb(model, tmp_path):
    from websockets.sync.client import connect

    frame = json.dumps(
        {"frame": [[0.5, 0.5, 0.0]] * 136, "t": 1.0, "image_width": 640, "image_height": 480}
    )
    window = 500  # frames in flight: the client keeps up with the answers, as the page does
    with islr_serve_process(model, tmp_path / "cache", start_timeout=90) as served:
        pid = served.process.pid
        url = served.url.replace("http://", "ws://") + "v1/stream"
        with connect(url, max_size=None) as ws:
            answers: dict[str, int] = {}
            answered = threading.Semaphore(0)

            def read() -> None:
                while sum(answers.values()) < 100_000 - 1:
                    event = json.loads(ws.recv(timeout=60))
                    answers[event["type"]] = answers.get(event["type"], 0) + 1
                    if event["type"] == "error":
                        answered.release()

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            ws.send(frame)  # the first frame at t = 1.0 is taken; every later one is refused
            start_mb = _rss_mb(pid)
            for i in range(1, 100_000):
                ws.send(frame)
                if i >= window:
                    assert answered.acquire(timeout=60), answers
            reader.join(120)
            end_mb = _rss_mb(pid)
            ws.send('{"reset": true}')  # the socket still works
            assert json.loads(ws.recv(timeout=10)) == {"type": "reset"}
    print(f"server RSS {start_mb:.1f} -> {end_mb:.1f} MB over 100k frames at t = 1.0; {answers}")
    assert answers["error"] == 100_000 - 1
    assert end_mb - start_mb < 20


def test_a_client_that_disconnects_mid_body_is_one_log_line(model, tmp_path):
    with islr_serve_process(model, tmp_path / "cache", start_timeout=90) as served:
        port = _port(served.url)
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(
                    b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                    b'application/json\r\nContent-Length: 100000\r\n\r\n{"frames": ['
                )
                time.sleep(0.2)
        time.sleep(1)
        assert httpx.get(served.url + "healthz", timeout=5).status_code == 200
        log = "".join(served.output)
    assert "Traceback" not in log and "Exception in ASGI" not in log, log
    assert log.count("disconnected during POST /v1/predict") == 5, log


def test_a_client_that_sends_its_headers_too_slowly_is_cut_off(model, tmp_path):
    with islr_serve_process(model, tmp_path / "cache", "--header-timeout", "1") as served:
        port = _port(served.url)
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            closed = b""
            for _ in range(8):  # a header now and then, as a slow client does
                time.sleep(0.3)
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                    s.settimeout(0.01)
                    closed = s.recv(100)
                    break  # b"": closed by the server
                except TimeoutError:
                    s.settimeout(10)
                except OSError:
                    break
            seconds = time.perf_counter() - t0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            t0 = time.perf_counter()
            assert idle.recv(100) == b""  # a connection that sends nothing is closed too
            idle_seconds = time.perf_counter() - t0
        assert httpx.get(served.url + "healthz", timeout=5).status_code == 200
    assert closed == b"" and 0.9 < seconds < 2.5, (closed, seconds)
    assert 0.9 < idle_seconds < 2.5, idle_seconds


# ------------------------------------------------------------------------------- the CLI


def test_predict_over_20_files_lists_the_bad_one_and_predicts_the_rest(tmp_path):
    from islr.landmarks import LandmarkSequence, save_sequence

    run = tiny_run(tmp_path / "run")
    rng = np.random.default_rng(0)
    inputs = []
    for i in range(20):
        path = tmp_path / f"clip{i:02d}.npz"
        save_sequence(
            LandmarkSequence(rng.random((12, 75, 3), dtype=np.float32), "hands_pose75"), path
        )
        inputs.append(path)
    deep = tmp_path / "clip07.json"  # a keypoint file nested 100k deep, among the others
    deep.write_text(DEEP)
    inputs[7] = deep
    nobody = tmp_path / "clip13.npz"  # no landmark in any frame
    save_sequence(
        LandmarkSequence(np.full((12, 75, 3), np.nan, np.float32), "hands_pose75"), nobody
    )
    inputs[13] = nobody
    result = subprocess.run(
        [*ISLR, "predict", str(run), *map(str, inputs), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 20
    failed = {r["input"]: r["error"] for r in records if "error" in r}
    assert set(failed) == {str(deep), str(nobody)}, failed
    assert "no landmarks" in failed[str(nobody)]
    assert sum("top" in r for r in records) == 18
    assert "2 of 20 inputs failed" in result.stderr and str(deep) in result.stderr


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_kill_9_of_extract_leaves_no_process(tmp_path, video_extra):
    from tests.conftest import shared_data

    video = shared_data("videos", "SOUP.mp4")
    for i in range(6):
        target = tmp_path / "videos" / "soup" / f"take{i}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(video)
    process = subprocess.Popen(
        [
            *ISLR,
            "extract",
            str(tmp_path / "videos"),
            "--out",
            str(tmp_path / "cache"),
            "--workers",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: every descendant can be found
    )
    try:
        deadline = time.monotonic() + 120
        children: list[str] = []
        while time.monotonic() < deadline and len(children) < 2:
            path = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            children = path.read_text().split() if path.exists() else []
            time.sleep(0.1)
        assert len(children) >= 2, "the workers did not start"
        time.sleep(3)  # the workers are extracting
        process.send_signal(signal.SIGKILL)  # the parent alone, as the OOM killer does
        process.wait(timeout=10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _group_alive(process.pid):
            time.sleep(0.2)
        assert not _group_alive(process.pid), "workers outlived the killed islr extract"
    finally:
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)


# -------------------------------------------------------------------- a real browser, another site

ATTACK = """
async ([target, body]) => {
  const results = {};
  // a "simple" request (text/plain, no-cors): no preflight, the browser sends it as is
  await fetch(target + "v1/vocabulary", { method: "POST", mode: "no-cors",
    headers: { "content-type": "text/plain" }, body });
  results.simple = "sent";
  try {  // a JSON request needs a CORS preflight, which the server does not grant
    const r = await fetch(target + "v1/vocabulary", { method: "POST",
      headers: { "content-type": "application/json" }, body });
    results.json = r.status;
  } catch (e) { results.json = "blocked"; }
  results.socket = await new Promise((resolve) => {
    const ws = new WebSocket(target.replace("http", "ws") + "v1/stream");
    ws.onopen = () => resolve("open");
    ws.onclose = (e) => resolve(`closed ${e.code}`);
  });
  return results;
}
"""


@pytest.mark.browser
@pytest.mark.slow
def test_a_page_of_another_origin_cannot_write_or_stream_in_chromium(model, tmp_path):
    import http.server
    import socketserver

    from tests.conftest import free_port
    from tests.test_browser_harness import chromium, skip_without_browser

    skip_without_browser()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>another site</title>")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(site))  # noqa: E731
    port = free_port()
    with (
        socketserver.TCPServer(("127.0.0.1", port), handler) as other_site,
        islr_serve_process(model, tmp_path / "cache", "--allow-enroll") as served,
    ):
        threading.Thread(target=other_site.serve_forever, daemon=True).start()
        body = json.dumps({"label": "evil", "takes": takes()})
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"http://localhost:{port}/index.html")
            results = page.evaluate(ATTACK, [served.url, body])
        other_site.shutdown()
        vocabulary = httpx.get(served.url + "v1/vocabulary", timeout=10).json()
        log = "".join(served.output)
    print(results)
    assert results["json"] == "blocked" and results["socket"] != "open", results
    assert "evil" not in [s["label"] for s in vocabulary["signs"]]
    assert not (model.parent / "model.vocab.json").exists()
    assert log.count("refused POST /v1/vocabulary") >= 1 and "refused WS /v1/stream" in log, log
