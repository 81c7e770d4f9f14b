"""Benchmark the static web app (`islr web build`) on an emulated phone in headless Chromium.

HEADLESS figures: software WebGL (SwiftShader), no GPU; the page picks MediaPipe's CPU inference.
For each pose model the site can be built with (full: as islr extract; lite: faster) it builds the
site of include50, serves it with `python -m http.server` and opens it as a phone (390x844, touch,
device scale factor 3) whose fake front camera loops a real sign video. Prints side by side:

- the build's size on disk and what the first visit downloads (fresh browser profile);
- landmark frames per second and per-frame costs (Holistic, classifier, frame -> prediction) at
  1x and at 4x CPU throttling (CDP Emulation.setCPUThrottlingRate: a mid-range phone is about 4x
  slower than a desktop core), with the chosen settings.

    python bench/bench_web_app.py [--seconds 20] [--pose full lite] [--rates 1 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from test_browser_harness import (  # noqa: E402
    RequestLog,
    browser_missing,
    chromium,
    video_to_y4m,
    wait_for,
)
from test_web_app import PHONE, StaticServer  # noqa: E402

VIDEO = REPO_ROOT.parent / "shared" / "data" / "videos" / "wlasl_12320_COMPUTER.mp4"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(browser, url: str, rates: list[int], seconds: float) -> dict:
    """One phone visit: the first-visit bytes, then the figures at each throttling rate."""
    context = browser.new_context(**PHONE)
    log = RequestLog()
    log.attach(context)
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    wait_for(page, "window.islrState?.predictions >= 1", 300, "the first prediction")
    result = {"first_s": time.perf_counter() - start, "first_bytes": log.total_bytes(), "rates": {}}
    cdp = context.new_cdp_session(page)
    for rate in rates:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
        time.sleep(3)  # settle at the new speed
        page.evaluate("islrState.holisticMs.length = 0; islrState.modelMs.length = 0")
        page.evaluate("islrState.delaysMs.length = 0")
        frames_0 = page.evaluate("islrState.frames")
        t0 = time.perf_counter()
        time.sleep(seconds)
        state = page.evaluate(
            "({frames: islrState.frames, holisticMs: islrState.holisticMs,"
            " modelMs: islrState.modelMs, delaysMs: islrState.delaysMs})"
        )
        elapsed = time.perf_counter() - t0
        result["rates"][rate] = {
            "fps": (state["frames"] - frames_0) / elapsed,
            "holistic_ms": median(state["holisticMs"]),
            "model_ms": median(state["modelMs"]),
            "delay_ms": median(state["delaysMs"]),
        }
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    context.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per rate")
    parser.add_argument("--pose", nargs="+", default=["full", "lite"], help="pose models to build")
    parser.add_argument("--rates", nargs="+", type=int, default=[1, 4], help="CPU throttling")
    args = parser.parse_args()
    reason = browser_missing()
    if reason:
        sys.exit(f"bench_web_app: {reason}")
    if not VIDEO.is_file():
        sys.exit(f"bench_web_app: {VIDEO} is absent (shared data)")

    print("HEADLESS figures: Debian Chromium, software WebGL (SwiftShader, CPU inference), no GPU")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"phone: 390x844, touch, scale 3; fake front camera: {VIDEO.name} (640x480), looped")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        y4m = video_to_y4m(VIDEO, Path(tmp) / "webcam.y4m")
        with chromium(fake_webcam=y4m) as browser:
            for pose in args.pose:
                site = Path(tmp) / f"site-{pose}"
                env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
                command = [
                    sys.executable,
                    "-c",
                    "from islr.cli import main; main()",
                    "web",
                    "build",
                ]
                subprocess.run(
                    [*command, "include50", "--out", str(site), "--pose", pose],
                    check=True,
                    env=env,
                    capture_output=True,
                )
                size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
                server = StaticServer(site)
                try:
                    results[pose] = {
                        "size": size,
                        **measure(browser, server.url, args.rates, args.seconds),
                    }
                finally:
                    server.close()

    print()
    print("build and first visit (fresh profile: the service worker caches the whole site)")
    for pose, r in results.items():
        print(
            f"  pose {pose:4s}: site {r['size'] / 1e6:5.1f} MB on disk; first visit downloads "
            f"{r['first_bytes'] / 1e6:5.1f} MB, first prediction after {r['first_s']:5.1f} s"
        )
    print()
    print("per frame, median (landmark fps over the window; Holistic = MediaPipe's call)")
    print("  pose  CPU x  landmark fps  Holistic ms  classifier ms  frame->prediction ms")
    for pose, r in results.items():
        for rate, m in r["rates"].items():
            print(
                f"  {pose:4s}  {rate:4d}x  {m['fps']:12.2f}  {m['holistic_ms']:11.1f}  "
                f"{m['model_ms']:13.2f}  {m['delay_ms']:20.1f}"
            )
    if {"full", "lite"} <= results.keys():
        for rate in args.rates:
            full, lite = results["full"]["rates"][rate], results["lite"]["rates"][rate]
            print(
                f"  lite / full at {rate}x: {lite['fps'] / max(full['fps'], 1e-9):.2f}x fps, "
                f"{lite['holistic_ms'] / max(full['holistic_ms'], 1e-9):.2f}x Holistic ms"
            )


if __name__ == "__main__":
    main()
