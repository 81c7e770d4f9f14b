"""The static web app (`islr web build`) in a real headless Chromium emulating a phone, served by
`python -m http.server` with no islr process running.

The fake front camera plays a real sign video (wlasl COMPUTER, an ASL sign that include50 reads as
its sign "loud", confidently, every loop: bench/bench_other_signs.py) in a loop. The phone
(390x844, touch, device scale factor 3) opens the site: its transcript has the sign Python's own
pipeline names for the clip; after a reload with the network cut the service worker starts it and
it still does; a sign added in the browser (takes in IndexedDB, the head refitted in the browser)
is then recognised, survives a reload, and its exported vocabulary file loads in `islr predict`.
A new build replaces the cached one. Skips like tests/test_browser.py; screenshots go to
artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, shared_data
from test_browser_enrol import record_takes
from test_browser_harness import (
    REPO_ROOT,
    RequestLog,
    chromium,
    skip_without_browser,
    video_to_y4m,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "artifacts" / "browser"
CLIP = "wlasl_12320_COMPUTER.mp4"
NEW_SIGN = "asl computer"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
ISLR = [sys.executable, "-c", "from islr.cli import main; main()"]


def islr(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*ISLR, *args], capture_output=True, text=True, cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


class StaticServer:
    """`python -m http.server` in a folder, on a free loopback port."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}/"
        import httpx

        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    skip_without_browser()
    out = tmp_path_factory.mktemp("site") / "site"
    islr("web", "build", "include50", "--out", str(out))
    return out


@pytest.fixture(scope="module")
def clip_label() -> str:
    """What Python's own pipeline (MediaPipe in Python, ONNX Runtime) names the whole clip."""
    pytest.importorskip("mediapipe", reason="the [video] extra extracts the clip in Python")
    from islr.extract import extract_video
    from islr.inference import Engine
    from islr.pretrained import resolve_model

    engine = Engine.load(resolve_model("include50"), vocabulary=False)
    seq = extract_video(shared_data("videos", CLIP), layout=engine.layout)
    return engine.predict(seq, top_k=1)[0][0]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    skip_without_browser()
    y4m = video_to_y4m(shared_data("videos", CLIP), tmp_path_factory.mktemp("webcam") / "clip.y4m")
    with chromium(fake_webcam=y4m) as b:
        yield b


def wait_ready(page, what: str) -> None:
    wait_for(page, "window.islrState?.phase === 'ready' && islrState.enrol", 180, what)
    state = page.evaluate("({...islrState, transcript: undefined})")
    assert state["phase"] == "ready", state.get("error")


def wait_for_sign(page, label: str, what: str) -> None:
    wait_for(
        page,
        f"islrState.transcript.some((t) => t.type === 'sign' && t.label === {label!r})",
        150,
        what,
    )


def test_phone_site_recognises_offline_and_adds_a_sign(site, browser, clip_label, tmp_path):
    server = StaticServer(site)
    manifest = json.loads((site / "site.json").read_text())
    context = browser.new_context(**PHONE)
    log = RequestLog()
    log.attach(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # first visit: the service worker caches the build; the page runs it from there
        page.goto(server.url)
        wait_ready(page, "the site's first visit")
        # the camera starts on its own after the page is ready
        wait_for(page, "islrState.facing !== null", 60, "the camera to start")
        state = page.evaluate("({...islrState, transcript: undefined})")
        assert state["offlineReady"] and state["site"]["build"] == manifest["build"]
        assert state["inferMode"] == "browser" and state["facing"] == "user"
        assert state["segmenterKind"] == "learned"
        wait_for_sign(page, clip_label, f"{clip_label!r} in the transcript")
        first_bytes = log.total_bytes()
        print(
            f"first visit: {first_bytes / 1e6:.1f} MB for a {manifest['bytes'] / 1e6:.1f} MB site"
        )
        # everything once (the page's own small files twice: before and by the service worker)
        assert first_bytes <= manifest["bytes"] + 600_000, first_bytes
        assert log.non_local() == [] and errors == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone.png"))

        # a tap on a word shows how sure the model was
        page.locator("#transcript .word").first.tap()
        assert page.locator("#guesses").is_visible()
        assert "%" in page.locator("#guesses").inner_text()

        # the network cut: the service worker starts the site, and it still recognises the sign
        context.set_offline(True)
        page.reload()
        wait_ready(page, "the site offline")
        wait_for_sign(page, clip_label, f"{clip_label!r} in the transcript, offline")

        # a sign added in the browser (still offline), then recognised
        enrol = record_takes(page, NEW_SIGN)
        assert enrol["phase"] == "recorded", enrol["message"]
        assert [t["status"] for t in enrol["takes"]] == ["recorded"] * 3, enrol["takes"]
        print("check:", enrol["check"])
        page.click("[data-enrol=force]" if enrol["check"]["flagged"] else "[data-enrol=save]")
        wait_for(page, "['saved', 'error'].includes(islrState.enrol.phase)", 120, "the save")
        enrol = page.evaluate("islrState.enrol")
        assert enrol["phase"] == "saved", enrol["message"]
        page.click("#clear")
        wait_for_sign(page, NEW_SIGN, f"{NEW_SIGN!r} in the transcript")
        page.screenshot(path=str(ARTIFACTS / "phone-added.png"), full_page=True)

        # kept in the browser across a reload
        page.reload()
        wait_ready(page, "the site offline, again")
        assert [s["label"] for s in page.evaluate("islrState.enrol.added")] == [NEW_SIGN]

        # exported as the vocabulary file islr reads
        with page.expect_download() as download:
            page.click("[data-enrol=export]")
        exported = tmp_path / "exported.vocab.json"
        download.value.save_as(exported)
    finally:
        context.close()
        server.close()
    assert errors == []

    model = tmp_path / "model" / "include50.onnx"
    model.parent.mkdir()
    model.write_bytes((REPO_ROOT / "islr" / "pretrained" / "include50.onnx").read_bytes())
    islr("vocab", "import", str(model), str(exported))
    done = islr("predict", str(model), str(shared_data("videos", CLIP)), "--json", "-k", "3")
    top = json.loads(done.stdout.strip().splitlines()[-1])["top"]
    print("islr predict with the exported signs:", top)
    assert top[0]["label"] == NEW_SIGN


def test_a_new_build_replaces_the_cached_one(site, browser, tmp_path):
    import shutil

    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    server = StaticServer(copy)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(server.url + "?camera=0")
        wait_ready(page, "the first build")
        old = page.evaluate("islrState.site.build")
        islr("web", "build", "include50", "--out", str(copy), "--pose", "lite")
        new = json.loads((copy / "site.json").read_text())["build"]
        assert new != old
        page.reload()  # the browser finds the new worker; it takes over and reloads the page
        wait_for(
            page,
            f"islrState.site?.build === {new!r} && islrState.phase === 'ready'",
            180,
            "the new build",
        )
        assert page.evaluate("caches.keys()") == [f"islr-{new}"]
        assert page.evaluate("islrState.poseModel") == "lite"
    finally:
        context.close()
        server.close()
