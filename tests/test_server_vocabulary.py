"""``/v1/vocabulary``: writes only with --allow-enroll (403), limits (413), bad input (422), the
near-duplicate flag (409 unless forced), add / rename / remove persisted beside the model and
used at once by /v1/predict, WS /v1/stream and GET /v1/model, and still there after a restart."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs PyTorch, the [train] extra")
pytest.importorskip("onnx", reason="needs onnx, the [train] extra")
from islr.serving.app import ServeConfig, create_app  # noqa: E402
from tests.conftest import local_client  # noqa: E402
from tests.test_inference_support import (  # noqa: E402
    synthetic_labels,
    synthetic_onnx,
    unseen_synthetic_sign,
)


def take(seq) -> dict:
    """A take as the page sends it (the synthetic signs are in units of image width already)."""
    frames = [[None if np.isnan(p[0]) else p.tolist() for p in f] for f in seq.data]
    return {"frames": frames, "layout": "holistic136"}


def wave_takes(n: int, start: int = 0) -> list[dict]:
    return [take(unseen_synthetic_sign(start + i, signer=5 + i % 2)) for i in range(n)]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.onnx"
    shutil.copy(synthetic_onnx(), path)
    return path


def serve(model, **config):
    return local_client(create_app(model, ServeConfig(**config)))


def test_reading_and_checking_work_without_enroll_but_writes_are_403(model):
    with serve(model) as client:
        listing = client.get("/v1/vocabulary").json()
        assert listing["allow_enroll"] is False and listing["embedding_dim"] > 0
        assert set(listing["limits"]) == {"max_takes", "max_take_frames", "max_take_bytes"}
        assert set(listing["calibration"]) == {"scale", "bias"}
        assert [s["label"] for s in listing["signs"]] == synthetic_labels()
        assert all(s["kind"] == "known" and "prototypes" not in s for s in listing["signs"])
        check = client.post("/v1/vocabulary/check", json={"label": "wave", "takes": wave_takes(3)})
        assert check.status_code == 200, check.text
        body = check.json()
        assert set(body) == {"label", "consistency", "nearest", "flagged", "reason"}
        assert len(body["consistency"]["per_take"]) == 3 and body["flagged"] is False
        body = {"label": "wave", "takes": wave_takes(1)}
        assert client.post("/v1/vocabulary", json=body).status_code == 403
        assert client.delete("/v1/vocabulary/wave").status_code == 403
        assert client.patch("/v1/vocabulary/wave", json={"label": "x"}).status_code == 403
    assert not (model.parent / "model.vocab.json").exists()


def test_limits_and_bad_input(model):
    with serve(model, allow_enroll=True, max_takes=2, max_take_frames=100) as client:
        seq = unseen_synthetic_sign(0)
        long = take(seq)
        long["frames"] = long["frames"] * 3
        cases = [
            ({"label": "w", "takes": wave_takes(3)}, 413, "at most 2"),
            ({"label": "w", "takes": [long]}, 413, "frames"),
            ({"label": "", "takes": wave_takes(1)}, 422, "label"),
            ({"label": "w", "takes": []}, 422, ""),
            ({"label": "w", "takes": [{"frames": [[[1, 2, 3]]], "layout": "nope"}]}, 422, "nope"),
            ({"label": "w", "takes": [{"frames": [[[1, 2, 3]]]}]}, 422, "points"),
            (
                {"label": "w", "takes": [{"frames": [[None] * 136] * 5, "layout": "holistic136"}]},
                422,
                "no landmarks",
            ),
        ]
        for body, status, message in cases:
            r = client.post("/v1/vocabulary", json=body)
            assert r.status_code == status, (body, r.text)
            assert message in r.text
        r = client.post(
            "/v1/vocabulary", content=b"{", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
    with serve(model, allow_enroll=True, max_take_bytes=1000) as client:
        r = client.post("/v1/vocabulary", json={"label": "w", "takes": wave_takes(1)})
        assert r.status_code == 413 and "bytes" in r.text
    assert not (model.parent / "model.vocab.json").exists()


def test_add_recognise_rename_remove_and_persist(model):
    known = synthetic_labels()
    queries = [take(unseen_synthetic_sign(100 + i, signer=5 + i % 2)) for i in range(4)]
    with serve(model, allow_enroll=True) as client:
        assert [client.post("/v1/predict", json=q).json()["label"] for q in queries] != ["wave"] * 4
        r = client.post("/v1/vocabulary", json={"label": "wave", "takes": wave_takes(5)})
        assert r.status_code == 200, r.text
        sign = r.json()["sign"]
        assert sign["kind"] == "added" and sign["examples"] == 5
        assert len(sign["prototypes"]) == 5 and sign["provenance"][0]["examples"] == 5
        # recognised at once
        predicted = [client.post("/v1/predict", json=q).json()["label"] for q in queries]
        assert predicted.count("wave") >= 3, predicted
        assert client.get("/v1/model").json()["labels"] == [*known, "wave"]
        # more examples of an existing sign
        r = client.post("/v1/vocabulary", json={"label": "wave", "takes": wave_takes(2, 60)})
        assert r.json()["sign"]["examples"] == 7 and len(r.json()["sign"]["prototypes"]) == 7
        # the same sign again under another name is too close; forced, it is added
        again = {"label": "wave2", "takes": wave_takes(3, start=50)}
        r = client.post("/v1/vocabulary", json=again)
        assert r.status_code == 409 and r.json()["nearest"]["label"] == "wave"
        assert r.json()["flagged"] and "too close" in r.json()["reason"]
        r = client.post("/v1/vocabulary", json={**again, "force": True})
        assert r.status_code == 200
        # rename and remove, with their errors
        assert client.patch("/v1/vocabulary/wave2", json={"label": "wave"}).status_code == 409
        assert client.patch(f"/v1/vocabulary/{known[0]}", json={"label": "x"}).status_code == 409
        assert client.patch("/v1/vocabulary/nope", json={"label": "x"}).status_code == 404
        r = client.patch("/v1/vocabulary/wave2", json={"label": "wave b"})
        assert r.status_code == 200 and r.json()["label"] == "wave b"
        assert client.delete(f"/v1/vocabulary/{known[0]}").status_code == 409
        assert client.delete("/v1/vocabulary/nope").status_code == 404
        assert client.delete("/v1/vocabulary/wave%20b").status_code == 200
    stored = json.loads((model.parent / "model.vocab.json").read_text())
    assert [s["label"] for s in stored["signs"]] == ["wave"]
    with serve(model) as client:  # a restart, writes off: the sign is still there
        listing = client.get("/v1/vocabulary").json()
        assert [s["label"] for s in listing["signs"]] == [*known, "wave"]
        assert listing["signs"][-1]["examples"] == 7
        predicted = [client.post("/v1/predict", json=q).json()["label"] for q in queries]
        assert predicted.count("wave") >= 3, predicted


def test_the_stream_uses_a_sign_added_while_it_runs(model):
    seq = unseen_synthetic_sign(300)
    rest = [seq.data[0]] * 20
    frames = [*rest, *seq.data, *[seq.data[-1]] * 30]
    frames = [[None if np.isnan(p[0]) else p.tolist() for p in f] for f in frames]

    def stream_labels(ws) -> list[str]:
        for frame in frames:
            ws.send_json({"frame": frame, "layout": "holistic136", "aspect_corrected": True})
        ws.send_json({"flush": True})
        events = []
        while (event := ws.receive_json())["type"] != "flushed":
            events.append(event)
        return [e.get("label") or e["top"][0]["label"] for e in events if "top" in e]

    with serve(model, allow_enroll=True) as client, client.websocket_connect("/v1/stream") as ws:
        assert "wave" not in stream_labels(ws)
        r = client.post("/v1/vocabulary", json={"label": "wave", "takes": wave_takes(5)})
        assert r.status_code == 200
        ws.send_json({"reset": True})
        assert ws.receive_json()["type"] == "reset"
        assert "wave" in stream_labels(ws)
