"""Server load test: POST /v1/predict latency (p50/p99), throughput and errors under concurrency.

    python bench/bench_server.py [--model MODEL] [--requests 2000] [--clients 1,16]
        [--source main=/tmp/islr-main] [--rounds 2]

Starts ``islr serve MODEL`` as a subprocess on a free loopback port (no access log), then a small
async httpx client sends ``--requests`` POST /v1/predict requests from each number of
concurrent ``--clients``. With ``--source NAME=DIR`` the same runs are made against the server of
another source tree (e.g. main's), alternating between them ``--rounds`` times, and one table
compares them. Each request is one realistic sequence: 60 frames of the model's layout with
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


def _serve(source: Path, model: Path, threads: int, tmp: str) -> tuple[subprocess.Popen, str]:
    """`islr serve` from the source tree ``source`` on a free loopback port; (process, base URL)."""
    import httpx

    port = _free_port()
    cmd = [
        sys.executable, "-c", "from islr.cli import main; main()", "serve", str(model),
        "--port", str(port), "--no-access-log", "--threads", str(threads),
    ]  # fmt: skip
    env = {**os.environ, "ISLR_CACHE": tmp, "PYTHONPATH": str(source)}
    # run in the source tree: `python -c` puts the working folder first on sys.path
    server = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=source
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
            return server, base
        except httpx.HTTPError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit(f"server did not start: {server.stderr.read().decode()}") from None
            time.sleep(0.3)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="RUN_DIR or .onnx (default: a fresh one)")
    parser.add_argument("--requests", type=int, default=2000, help="per run (source x clients)")
    parser.add_argument(
        "--clients", default="1,16", help="concurrent clients, comma-separated (one run each)"
    )
    parser.add_argument("--threads", type=int, default=1, help="classifier threads in the server")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also serve from another source tree (e.g. main's: git worktree add /tmp/main "
        "main) and compare side by side; repeatable",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate the sources this many times"
    )
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    here = Path(__file__).resolve().parents[1]
    sources = [("this", here)]
    for item in args.source:
        name, _, folder = item.partition("=")
        if not folder or not (Path(folder) / "islr").is_dir():
            raise SystemExit(f"--source {item!r}: give NAME=DIR with DIR/islr/ a source tree")
        sources.append((name, Path(folder).resolve()))

    import httpx

    runs: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="islr-bench-server-") as tmp:
        model = args.model or _default_model(Path(tmp))
        meta = None
        for round_index in range(args.rounds):
            # alternating the sources spreads the other load on the machine over both
            for name, source in sources if round_index % 2 == 0 else sources[::-1]:
                server, base = _serve(source, model, args.threads, tmp)
                try:
                    meta = httpx.get(f"{base}/v1/model", timeout=5).json()
                    body = _payload(meta["n_points"], meta["n_coords"])
                    for n in clients:
                        result = asyncio.run(_load(f"{base}/v1/predict", body, args.requests, n))
                        result["alive"] = httpx.get(f"{base}/healthz", timeout=5).status_code == 200
                        runs.setdefault((name, n), []).append(result)
                        lat = sorted(result["latencies"])
                        print(
                            f"round {round_index + 1} {name:>8} {n:>3} clients: "
                            f"p50 {_percentile(lat, 0.5):6.1f} ms  p99 {_percentile(lat, 0.99):6.1f}"
                            f" ms  {len(lat) / result['seconds']:6.0f} req/s  errors "
                            f"{sum(result['errors'].values())}",
                            flush=True,
                        )
                finally:
                    server.terminate()
                    server.wait(timeout=30)

    print(f"machine: {os.cpu_count()} CPUs (client and server share them), load {os.getloadavg()}")
    print(
        f"model: {meta.get('model')} ({meta['backend']}), layout {meta['layout']['name']}, "
        f"{len(meta['labels'])} signs; payload: 60 frames x {meta['n_points']} points x "
        f"{meta['n_coords']} coords ({len(body) / 1024:.0f} KiB JSON); server threads "
        f"{args.threads}; {args.requests} requests per run, {args.rounds} round(s)"
    )
    print(f"{'source':>8} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'errors':>6}")
    failed = False
    for (name, n), results in runs.items():
        lat = sorted(x for r in results for x in r["latencies"])
        seconds = sum(r["seconds"] for r in results)
        errors = sum(sum(r["errors"].values()) for r in results)
        failed |= errors > 0 or not all(r["alive"] for r in results)
        print(
            f"{name:>8} {n:>7} {_percentile(lat, 0.5):8.1f} {_percentile(lat, 0.99):8.1f} "
            f"{len(lat) / seconds:7.0f} {errors:>6}"
        )
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
