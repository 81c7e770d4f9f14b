"""Benchmark the web page in headless Chromium (HEADLESS figures: software WebGL, no GPU).

Fake webcam = a real sign video (FOOTBALL.mp4 as .y4m, looped by Chromium); fixture classifier
(tests/test_browser_harness.py). Prints, side by side in one run:

- landmark frames per second on the page and Holistic ms per frame, with MediaPipe's CPU
  inference (what the page picks on a software renderer) vs its default WebGL inference;
- the same video through Python MediaPipe (islr.extract) for comparison;
- end-to-end delay from a webcam frame to the prediction on screen, and the classifier's time;
- bytes the page loads before its first prediction, and the time to get there;
- the page's landmarks vs Python's (islr.extract) on the same frames of the video, per part
  (median / 95th percentile of |difference| of x, y in image units).

    python bench/bench_browser.py [--seconds 20] [--gpu-seconds 30] [--skip-gpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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
    export_fixture_model,
    landmark_differences,
    page_app,
    page_landmarks,
    page_video_file,
    serve,
    video_to_y4m,
    wait_for,
)

VIDEO = REPO_ROOT.parent / "shared" / "data" / "videos" / "FOOTBALL.mp4"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def run_page(browser, base_url: str, query: str, seconds: float, first_timeout: float) -> dict:
    """Open the page, wait for the first prediction, then measure for ``seconds``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    log = RequestLog()
    log.attach(context)
    page = context.new_page()
    start = time.perf_counter()
    page.goto(base_url + query)
    wait_for(page, "window.islrState?.predictions >= 1", first_timeout, "the first prediction")
    first_prediction_s = time.perf_counter() - start
    bytes_first = log.total_bytes()
    frames_0 = page.evaluate("islrState.frames")
    t0 = time.perf_counter()
    time.sleep(seconds)
    state = page.evaluate(
        "({frames: islrState.frames, holisticMs: islrState.holisticMs, modelMs: islrState.modelMs,"
        " delaysMs: islrState.delaysMs, cpu: islrState.mpCpuInference, renderer: islrState.webglRenderer})"
    )
    elapsed = time.perf_counter() - t0
    context.close()
    return {
        "fps": (state["frames"] - frames_0) / elapsed,
        "holistic_ms": statistics.median(state["holisticMs"][1:] or [float("nan")]),
        "model_ms": statistics.median(state["modelMs"] or [float("nan")]),
        "delays": state["delaysMs"],
        "first_prediction_s": first_prediction_s,
        "bytes_first": bytes_first,
        "cpu": state["cpu"],
        "renderer": state["renderer"],
        "by_url": dict(log.bytes_by_url),
    }


def python_holistic_fps() -> float:
    from islr.extract import extract_video

    extract_video(VIDEO, "holistic136")  # warm-up (model load)
    start = time.perf_counter()
    seq = extract_video(VIDEO, "holistic136")
    return len(seq.data) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window (CPU run)")
    parser.add_argument("--gpu-seconds", type=float, default=30.0, help="window of the WebGL run")
    parser.add_argument("--skip-gpu", action="store_true", help="skip the (slow) WebGL run")
    args = parser.parse_args()
    reason = browser_missing()
    if reason:
        sys.exit(f"bench_browser: {reason}")
    if not VIDEO.is_file():
        sys.exit(f"bench_browser: {VIDEO} is absent (shared data)")

    print("HEADLESS figures: Debian Chromium, software WebGL (SwiftShader), no GPU")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        model = export_fixture_model(Path(tmp) / "model")
        y4m = video_to_y4m(VIDEO, Path(tmp) / "webcam.y4m")
        with serve(page_app(model)) as base_url, chromium(fake_webcam=y4m) as browser:
            cpu = run_page(browser, base_url, "?mpcpu=1", args.seconds, 120)
            video_file = page_video_file(browser, base_url, VIDEO)
            gpu = None
            if not args.skip_gpu:
                gpu = run_page(browser, base_url, "?mpcpu=0", args.gpu_seconds, 300)
    py_fps = python_holistic_fps()
    from islr.extract import extract_video

    differences = landmark_differences(
        page_landmarks(video_file), extract_video(VIDEO, "holistic136").data
    )

    print(f"WebGL renderer: {cpu['renderer']}")
    print(f"video: {VIDEO.name} (640x360) as the fake webcam; classifier: fixture ONNX model")
    print()
    print("landmarks (MediaPipe Holistic, modelComplexity 1)")
    print(
        f"  page, CPU inference:   {cpu['fps']:6.2f} frames/s   {cpu['holistic_ms']:7.1f} ms/frame"
    )
    if gpu:
        print(
            f"  page, WebGL inference: {gpu['fps']:6.2f} frames/s   {gpu['holistic_ms']:7.1f} ms/frame"
        )
        print(f"  CPU / WebGL inference: {cpu['fps'] / max(gpu['fps'], 1e-9):6.1f}x frames/s")
    print(f"  Python (islr.extract): {py_fps:6.2f} frames/s   (same video, mediapipe 0.10.21)")
    print(f"  page CPU / Python:     {cpu['fps'] / py_fps:6.2f}x")
    print()
    delays = cpu["delays"]
    print("frame -> prediction on screen (page, CPU inference, in-browser classifier)")
    print(
        f"  median {percentile(delays, 50):.1f} ms, p95 {percentile(delays, 95):.1f} ms "
        f"over {len(delays)} predictions; classifier alone (onnxruntime-web wasm) "
        f"median {cpu['model_ms']:.2f} ms"
    )
    print()
    print("page load until the first prediction (fresh browser context, no cache)")
    print(
        f"  {cpu['bytes_first'] / 1e6:.1f} MB in {cpu['first_prediction_s']:.1f} s; largest files:"
    )
    for url, size in sorted(cpu["by_url"].items(), key=lambda kv: -kv[1])[:6]:
        print(f"    {size / 1e6:6.2f} MB  {url.split('/', 3)[-1]}")
    print()
    print(f"browser vs Python landmarks, {VIDEO.name} as a file on the page, same frames")
    print("  (|difference| of x, y in image units where both detected the part)")
    for name, r in differences.items():
        print(
            f"  {name:11s} median {r['median']:.4f}  p95 {r['p95']:.4f}  "
            f"both detected {r['both_frames']}/{r['frames']} frames, agree {r['agreement']:.0%}"
        )


if __name__ == "__main__":
    main()
