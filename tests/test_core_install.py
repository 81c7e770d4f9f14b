"""Adding a sign works on the core install (no torch, no onnx, no MediaPipe): ``islr enroll`` and
the API's ``POST /v1/vocabulary`` (the page's "Add a sign" -> Save) on the shipped model.

Each runs in a fresh interpreter in which the extras cannot be imported (as if not installed), so
the test means the same here, with every extra installed, as in the core-only CI job."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from islr.landmarks import save_sequence
from tests.conftest import REPO_ROOT
from tests.test_inference_support import unseen_synthetic_sign

EXTRAS = ("torch", "onnx", "mediapipe", "cv2")
# A finder that answers for the extras as an interpreter without them does.
WITHOUT_EXTRAS = f"""
import sys

class WithoutExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, WithoutExtras())
"""


def run_core(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter where the extras are absent; it fails if one was loaded."""
    check = f"\nassert not any(m in sys.modules for m in {EXTRAS!r}), 'an extra was imported'\n"
    code = WITHOUT_EXTRAS + textwrap.dedent(script) + check
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_extras_are_absent_in_the_core_interpreter(tmp_path):
    result = run_core("import torch", tmp_path)
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr


def test_islr_enroll_adds_a_sign_to_the_shipped_model_without_torch(tmp_path):
    takes = []
    for i in range(3):
        path = tmp_path / f"take{i}.npz"
        save_sequence(unseen_synthetic_sign(i, signer=5 + i % 2), path)
        takes.append(str(path))
    out = tmp_path / "mine.onnx"
    script = f"""
    sys.argv = ["islr", "enroll", "include50", *{takes!r}, "--label", "wave", "--force",
                "--out", {str(out)!r}]
    from islr.cli import main
    try:
        main()
    except SystemExit as e:
        assert not e.code, e.code
    """
    result = run_core(script, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    vocab = json.loads(out.with_name("mine.vocab.json").read_text())
    assert [s["label"] for s in vocab["signs"]] == ["wave"]
    assert out.read_bytes() == (REPO_ROOT / "islr/pretrained/include50.onnx").read_bytes()


def test_the_api_adds_a_sign_to_the_shipped_model_without_torch(tmp_path):
    def take(i: int) -> dict:
        seq = unseen_synthetic_sign(i, signer=5 + i % 2)
        frames = [[None if np.isnan(p[0]) else p.tolist() for p in f] for f in seq.data]
        return {"frames": frames, "layout": "holistic136"}

    body = tmp_path / "body.json"
    body.write_text(json.dumps({"label": "wave", "takes": [take(i) for i in range(3)]}))
    vocabulary = tmp_path / "include50.vocab.json"
    script = f"""
    import json
    from pathlib import Path
    from fastapi.testclient import TestClient
    from islr.serving.app import ServeConfig, create_app

    body = json.loads(Path({str(body)!r}).read_text())
    config = ServeConfig(allow_enroll=True, vocabulary=Path({str(vocabulary)!r}))
    app = create_app("include50", config)
    # as the page: from 127.0.0.1, with the write token it gets in its HTML
    token = {{"authorization": "Bearer " + app.state.islr.write_token}}
    with TestClient(app, base_url="http://127.0.0.1:8000", headers=token) as client:
        r = client.post("/v1/vocabulary", json={{**body, "force": True}})
        assert r.status_code == 200, (r.status_code, r.text)
        assert "wave" in client.get("/v1/model").json()["labels"]
    """
    result = run_core(script, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [s["label"] for s in json.loads(vocabulary.read_text())["signs"]] == ["wave"]
