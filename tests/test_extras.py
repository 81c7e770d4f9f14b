"""The light install: the core never imports torch, and a command that needs a missing extra
(``[train]``, ``[video]``) stops with one line naming it, exit code 2, no traceback.

Each check runs the real ``islr`` command in a child process where the extra's modules are made
unimportable (``sys.modules[name] = None``, as if never installed), whatever this environment has.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from islr.errors import MissingExtraError, missing_extra_message, require

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("torch", "onnx")
VIDEO = ("mediapipe", "cv2")
HEAVY = ("torch", "onnx", "mediapipe", "cv2")


def run_without(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a child process where the ``blocked`` modules cannot be imported."""
    prelude = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def islr_without(blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess:
    """The ``islr`` command with ``args``, with the ``blocked`` modules missing."""
    code = f"sys.argv = ['islr', *{list(args)!r}]\nfrom islr.cli import main\nmain()\n"
    return run_without(blocked, code)


def assert_one_line_error(done: subprocess.CompletedProcess, expected: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [expected], done.stderr


def test_core_modules_never_import_torch_or_mediapipe():
    code = (
        "import islr, islr.cli, islr.errors, islr.landmarks, islr.features, islr.inference, "
        "islr.evaluation, islr.extract, islr.serving.app, islr.datasets.importers, "
        "islr.datasets.synthetic, islr.datasets.labels\n"
        "islr.cli.build_app()\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])\n"
    )
    done = run_without((), code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_core_commands_run_without_the_extras(tmp_path):
    blocked = TRAIN + VIDEO
    assert islr_without(blocked, "--help").returncode == 0
    cache = tmp_path / "synth"
    done = islr_without(blocked, "synth", "--out", str(cache), "--classes", "2", "--per-class", "3")
    assert done.returncode == 0, done.stderr
    info = islr_without(blocked, "info", str(cache))
    assert info.returncode == 0 and "6 samples" in info.stdout, info.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "CACHE", "--out", "RUN"],
        ["demo", "--out", "RUN"],
        ["export", "RUN", "--out", "RUN/m.onnx"],
    ],
)
def test_train_commands_name_the_train_extra(tmp_path, args):
    args = [a.replace("CACHE", str(tmp_path)).replace("RUN", str(tmp_path / "run")) for a in args]
    done = islr_without(TRAIN, *args)
    assert_one_line_error(done, f'error: islr {args[0]} needs PyTorch: pip install "islr[train]"')
    assert not (tmp_path / "run").exists()  # stopped before doing anything


def test_a_checkpoint_without_torch_names_the_extra_and_the_onnx_way(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    sample = tmp_path / "sample.npz"
    for args in (["predict", str(run), str(sample)], ["serve", str(run)]):
        done = islr_without(TRAIN, *args)
        assert_one_line_error(
            done,
            f'error: the PyTorch checkpoint {run} needs PyTorch: pip install "islr[train]"; '
            "an exported .onnx model runs without it",
        )


def test_extract_without_mediapipe_names_the_video_extra(tmp_path):
    (tmp_path / "videos").mkdir()
    done = islr_without(VIDEO, "extract", str(tmp_path / "videos"), "--out", str(tmp_path / "c"))
    assert_one_line_error(done, f"error: {missing_extra_message('mediapipe', 'islr extract')}")
    assert "islr[video]" in done.stderr and not (tmp_path / "c").exists()


def test_the_video_extra_on_python_313_says_why_and_what_to_do(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 13, 0, "final", 0))
    message = missing_extra_message("mediapipe", "islr extract")
    assert message.startswith("islr extract needs MediaPipe, which is not available on Python 3.13")
    assert "mediapipe 0.10.21, the last release with the solutions API" in message
    assert "use Python 3.11 or 3.12" in message and "islr[video]" in message
    monkeypatch.setattr(sys, "version_info", (3, 12, 1, "final", 0))
    assert missing_extra_message("torch", "islr train") == (
        'islr train needs PyTorch: pip install "islr[train]"'
    )


def test_require_imports_or_raises_and_tells_a_broken_install(monkeypatch, tmp_path):
    import islr.errors

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r'^islr train needs PyTorch: pip install "islr'):
        require("torch", "islr train")
    with pytest.raises(MissingExtraError, match="needs PyTorch"):
        require("torch", "islr train", load=False)
    with pytest.raises(ValueError, match="unknown optional module"):
        require("numpy", "x")
    # installed, but a module it needs is not: say so rather than "install it"
    (tmp_path / "islr_fake_extra.py").write_text("import islr_fake_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(islr.errors.EXTRAS, "islr_fake_extra", ("Fake", "fake"))
    with pytest.raises(MissingExtraError, match="installed but cannot load.*fake_missing_dep"):
        require("islr_fake_extra", "x")
    (tmp_path / "islr_fake_ok.py").write_text("VALUE = 3\n")
    monkeypatch.setitem(islr.errors.EXTRAS, "islr_fake_ok", ("Fake", "fake"))
    assert require("islr_fake_ok", "x").VALUE == 3


def test_video_upload_without_the_video_extra_is_501_naming_it(tmp_path, monkeypatch):
    from islr.serving.app import create_app
    from tests.conftest import local_client
    from tests.test_inference_support import tiny_run

    run = tiny_run(tmp_path / "run")  # skips without torch
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with local_client(create_app(run, onnx_cache=tmp_path / "onnx")) as client:
        video = ("clip.mp4", b"\0\0\0\x18ftypmp42" + bytes(64), "video/mp4")
        response = client.post("/v1/predict/video", files={"file": video})
        assert client.get("/healthz").status_code == 200  # the rest of the server works
    assert response.status_code == 501
    assert "needs MediaPipe" in response.json()["detail"]
    assert "islr[video]" in response.json()["detail"]
