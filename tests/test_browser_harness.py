"""The real-browser harness: headless Chromium (Debian's) driven by Playwright, a fake webcam fed
from a real sign video, a loopback server for the page, and a fixture ONNX classifier.

Used by tests/test_browser.py and bench/bench_browser.py. The fast tests at the bottom check the
harness's own pieces (the fixture model follows the model contract) without a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from islr.serving.routers.page import VENDOR_FILES

REPO_ROOT = Path(__file__).resolve().parents[1]
STATIC_DIR = REPO_ROOT / "islr" / "serving" / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
# Exactly what web/build.sh ships (the server's list); the browser test checks the page loads all
# of it and no more.
VENDORED_FILES = tuple(f.removeprefix("vendor/") for f in VENDOR_FILES)
# The launch flags the project's browser tests use: no sandbox (CI runs as root), nothing that
# phones home, camera permission granted, and a video file as the webcam. Playwright's default
# --enable-unsafe-swiftshader is dropped: Chromium still gives WebGL2 through SwiftShader/ANGLE.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def chromium_path() -> str | None:
    """Debian's Chromium (or $ISLR_CHROMIUM), or None."""
    candidates = [os.environ.get("ISLR_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install -y chromium)"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed (apt-get install -y ffmpeg); it makes the fake webcam"
    missing = [f for f in VENDORED_FILES if not (VENDOR_DIR / f).is_file()]
    if missing:
        return f"the page's vendored assets are missing ({missing[0]}…): run `make web`"
    return None


def skip_without_browser() -> None:
    """Skip when a tool is missing here; under CI=true, fail: CI must run the browser tests."""
    from conftest import missing_tool

    reason = browser_missing()
    if reason:
        missing_tool(f"browser test cannot run: {reason}")


# ---- the fixture classifier -----------------------------------------------------------------


@dataclass
class FixtureModel:
    """A tiny SignClassifier with random weights, exported by `islr export`'s code: a test
    fixture (its predictions mean nothing), but the real architecture, export and metadata."""

    onnx_path: Path
    metadata: dict = field(default_factory=dict)


def export_fixture_model(out_dir: Path, seq_len: int = 32, n_classes: int = 6) -> FixtureModel:
    """Checkpoint of an untrained classifier (holistic136, x/y/z) -> ONNX via islr.inference."""
    from conftest import need_torch

    torch = need_torch()

    from islr.export import export_onnx
    from islr.features.config import FeatureConfig
    from islr.models import ModelConfig, ModelSpec, save_checkpoint

    spec = ModelSpec(
        model=ModelConfig(
            "conv_transformer", {"dim": 32, "stages": 1, "conv_blocks": 1, "heads": 2}
        ),
        features=FeatureConfig(seq_len=seq_len),
        layout="holistic136",
        n_coords=3,
        labels=[f"fixture-sign-{i}" for i in range(n_classes)],
    )
    torch.manual_seed(0)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = save_checkpoint(out_dir / "fixture.pt", spec, spec.build().state_dict())
    result = export_onnx(checkpoint, out_dir / "fixture-model.onnx")
    return FixtureModel(result.path, result.metadata)


def page_app(model: FixtureModel, stream_threshold: float | None = None):
    """The real server (`islr serve`'s app) over the fixture model: page, API and WebSocket."""
    from islr.serving.app import ServeConfig, create_app

    config = ServeConfig()
    if stream_threshold is not None:
        config.stream_overrides = {"threshold": stream_threshold}  # as `islr serve --threshold`
    return create_app(model.onnx_path, config)


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# ---- Chromium with a fake webcam --------------------------------------------------------------


def video_to_y4m(video: Path, out: Path) -> Path:
    """Chromium's fake webcam plays a .y4m file (raw frames) in a loop."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )
    return out


@contextmanager
def chromium(fake_webcam: Path | None = None) -> Iterator:
    """A headless Chromium (Playwright's Python driver, Debian's browser); yields the Browser."""
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS)
    if fake_webcam is not None:
        args.append(f"--use-file-for-fake-video-capture={fake_webcam}")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=args,
            ignore_default_args=["--enable-unsafe-swiftshader"],
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class RequestLog:
    """Every request the page (and its workers) made, with response body sizes."""

    urls: list[str] = field(default_factory=list)
    bytes_by_url: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def attach(self, context) -> None:
        context.on("request", lambda r: self.urls.append(r.url))
        context.on("requestfinished", self._finished)
        context.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        # WebSockets are not "requests" to Playwright: log them per page
        context.on("page", lambda page: page.on("websocket", lambda ws: self.urls.append(ws.url)))

    def _finished(self, request) -> None:
        try:
            size = request.sizes()["responseBodySize"]
        except Exception:  # the page went away mid-request
            size = 0
        self.bytes_by_url[request.url] = self.bytes_by_url.get(request.url, 0) + size

    def non_local(self) -> list[str]:
        """Requests that left this machine (anything but loopback, data: and blob: URLs)."""
        out = []
        for url in self.urls:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob"):
                continue
            if parsed.hostname not in LOCAL_HOSTS:
                out.append(url)
        return out

    def static_paths(self) -> set[str]:
        """Paths under /static/vendor/ that were fetched, relative to vendor/."""
        prefix = "/static/vendor/"
        return {
            urlparse(u).path[len(prefix) :]
            for u in self.urls
            if urlparse(u).path.startswith(prefix)
        }

    def total_bytes(self) -> int:
        return sum(self.bytes_by_url.values())


def wait_for(page, js_condition: str, timeout_s: float, what: str) -> None:
    """Wait until ``js_condition`` holds in the page; fail with the page's state if it does not."""
    try:
        page.wait_for_function(js_condition, timeout=timeout_s * 1000, polling=200)
    except Exception as e:
        state = page.evaluate(
            "JSON.stringify(window.islrState ?? null, (k, v) => k === 'lastInput' || k === 'frames' || k === 'modelFrames' ? undefined : v)"
        )
        raise AssertionError(f"timed out waiting for {what}; page state: {state}") from e


# ---- fast checks of the harness itself --------------------------------------------------------


def page_video_file(browser, base_url: str, video: Path, screenshot: Path | None = None) -> dict:
    """Run ``video`` through the page's file input; its landmarks per frame, their times, the
    image size, the model input and logits of the whole clip."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(base_url + "?camera=0")
    wait_for(page, "window.islrState?.phase === 'ready'", 60, "the page to load")
    page.set_input_files("#file", str(video))
    wait_for(page, "islrState.file && islrState.file.status !== 'running'", 180, "the video file")
    result = page.evaluate(
        "({status: islrState.file.status, error: islrState.file.error, frames: islrState.file.frames,"
        " times: islrState.file.times, width: islrState.file.width, height: islrState.file.height,"
        " input: islrState.lastInput, logits: islrState.lastLogits, top: islrState.file.top})"
    )
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
    context.close()
    return result


def page_landmarks(result: dict) -> np.ndarray:
    """The page's landmarks of :func:`page_video_file` as ``(T, 136, 3)`` holistic136, NaN where
    missing."""
    from islr.landmarks import HOLISTIC136

    frames = result["frames"]
    data = [[np.nan if v is None else v for v in frame] for frame in frames]
    return np.array(data, dtype=np.float32).reshape(len(frames), HOLISTIC136.n_points, 3)


def landmark_differences(browser_data: np.ndarray, python_data: np.ndarray) -> dict[str, dict]:
    """Browser vs Python holistic136 landmarks of the same frames, per part: median and 95th
    percentile of |difference| of x, y (image units) where both detected the part, the frames
    detected by both, and the fraction of frames where both agree on "detected"."""
    from islr.landmarks import HOLISTIC136

    parts = {c: HOLISTIC136.slice(c) for c in ("left_hand", "right_hand", "face")}
    pose = HOLISTIC136.slice("pose")
    parts["pose_upper"] = slice(pose.start, pose.start + 17)  # nose to wrists: what signing uses
    report = {}
    for name, rows in parts.items():
        seen_b = ~np.isnan(browser_data[:, rows, 0]).all(axis=1)
        seen_p = ~np.isnan(python_data[:, rows, 0]).all(axis=1)
        both = seen_b & seen_p
        diff = np.abs(browser_data[both, rows, :2] - python_data[both, rows, :2])
        report[name] = {
            "median": float(np.median(diff)),
            "p95": float(np.percentile(diff, 95)),
            "both_frames": int(both.sum()),
            "frames": len(both),
            "agreement": float((seen_b == seen_p).mean()),
        }
    return report


def test_fixture_model_follows_the_contract(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    model = export_fixture_model(tmp_path, seq_len=8, n_classes=3)  # skips without torch
    import onnx

    meta = json.loads(
        next(p.value for p in onnx.load(str(model.onnx_path)).metadata_props if p.key == "islr")
    )
    assert meta["layout"]["name"] == "holistic136" and meta["n_points"] == 136
    assert meta == model.metadata and meta["seq_len"] == 8
    session = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((2, 8, 136, 3), dtype=np.float32)
    x[0, :, :21] = np.nan  # a missing hand must not poison the output
    (logits,) = session.run(["logits"], {"landmarks": x})
    assert logits.shape == (2, 3) and np.isfinite(logits).all()


def test_request_log_flags_non_local_requests() -> None:
    log = RequestLog(
        urls=[
            "http://127.0.0.1:8000/static/vendor/ort/ort.wasm.min.js",
            "blob:http://127.0.0.1:8000/1234",
            "data:,",
            "https://cdn.jsdelivr.net/npm/@mediapipe/holistic/holistic.js",
        ]
    )
    assert log.non_local() == ["https://cdn.jsdelivr.net/npm/@mediapipe/holistic/holistic.js"]
    assert log.static_paths() == {"ort/ort.wasm.min.js"}


def test_missing_vendored_assets_name_the_fix(tmp_path: Path, monkeypatch) -> None:
    import test_browser_harness as harness

    monkeypatch.setattr(harness, "VENDOR_DIR", tmp_path / "vendor")
    monkeypatch.setattr(harness, "chromium_path", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(harness.shutil, "which", lambda name: f"/usr/bin/{name}")
    reason = harness.browser_missing()
    if reason and "playwright" in reason:
        pytest.skip(reason)
    assert reason is not None and "make web" in reason
