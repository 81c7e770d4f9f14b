"""Server load test: POST /v1/predict latency (p50/p99), throughput and errors under concurrency.

    python bench/bench_server.py [--model MODEL] [--requests 10000] [--concurrency 16]

Starts ``islr serve MODEL`` as a subprocess on a free loopback port (no access log), then a small
async httpx client sends ``--requests`` POST /v1/predict requests from ``--concurrency``
concurrent clients. Each request is one realistic sequence: 60 frames of the model's layout with
some points null (not detected). Reports latency percentiles as the client sees them (including
JSON encoding, HTTP and parsing), requests per second, and every non-200 answer or transport error.
Without ``--model`` a freshly initialised default model (islr/configs/default.yaml, hands_pose75, 50
classes) is exported to ONNX and served: latency does not depend on the weights.
The client runs on the same machine and competes with the server for its CPU cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_model(root: Path) -> Path:
    """The shipped default recipe's model (islr/configs/default.yaml), freshly initialised, as ONNX."""
    from bench_inference import _make_run  # bench/ is on sys.path when run as a script

    from islr.export import export_onnx

    return export_onnx(_make_run("default", root), root / "model.onnx").path


def _payload(n_points: int, n_coords: int, n_frames: int = 60) -> bytes:
    rng = np.random.default_rng(0)
    frames = rng.random((n_frames, n_points, n_coords)).round(5).tolist()
    for t, frame in enumerate(frames):
        for i in range(0, n_points, 4 if t % 3 == 0 else 50):
            frame[i] = None
    return json.dumps({"frames": frames, "top_k": 5}).encode()


async def _load(url: str, body: bytes, requests: int, concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < requests:
            next_index += 1
            start = time.perf_counter()
            try:
                response = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
                ok = response.status_code == 200
                key = f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                ok, key = False, type(e).__name__
            if ok:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors[key] = errors.get(key, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await client.post(url, content=body, headers={"content-type": "application/json"})
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="RUN_DIR or .onnx (default: a fresh one)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="classifier threads in the server")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="islr-bench-server-") as tmp:
        model = args.model or _default_model(Path(tmp))
        port = _free_port()
        cmd = [
            sys.executable, "-c", "from islr.cli import main; main()", "serve", str(model),
            "--port", str(port), "--no-access-log", "--threads", str(args.threads),
        ]  # fmt: skip
        env = {**os.environ, "ISLR_CACHE": tmp}
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            import httpx

            deadline = time.monotonic() + 120
            while True:
                try:
                    meta = httpx.get(f"{base}/v1/model", timeout=1).json()
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(
                            f"server did not start: {server.stderr.read().decode()}"
                        ) from None
                    time.sleep(0.3)
            body = _payload(meta["n_points"], meta["n_coords"])
            result = asyncio.run(_load(f"{base}/v1/predict", body, args.requests, args.concurrency))
            alive = httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=30)

    lat = sorted(result["latencies"])
    n_ok, n_err = len(lat), sum(result["errors"].values())
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    print(f"machine: {os.cpu_count()} CPUs (client and server share them), load {os.getloadavg()}")
    print(
        f"model: {meta.get('model')} ({meta['backend']}), layout {meta['layout']['name']}, "
        f"{len(meta['labels'])} signs; payload: 60 frames x {meta['n_points']} points x "
        f"{meta['n_coords']} coords ({len(body) / 1024:.0f} KiB JSON); server threads "
        f"{args.threads}"
    )
    print(f"requests: {args.requests} from {args.concurrency} concurrent clients")
    print(f"ok: {n_ok}   errors: {n_err} {result['errors'] or ''}   server alive after: {alive}")
    print(
        f"latency ms: p50 {pct(0.5):.1f}  p90 {pct(0.9):.1f}  p99 {pct(0.99):.1f}  "
        f"max {lat[-1] if lat else float('nan'):.1f}  mean {statistics.fmean(lat) if lat else 0:.1f}"
    )
    print(f"throughput: {n_ok / result['seconds']:.0f} requests/s over {result['seconds']:.1f} s")
    if n_err:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
