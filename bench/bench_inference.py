"""Classifier latency, throughput and model size: ONNX Runtime vs PyTorch, default vs seed model.

    python bench/bench_inference.py [--run RUN_DIR] [--val-cache CACHE] [--repeats 300]
        [--json out.json]

Measured side by side in one run on this machine:
- latency of ONE sequence (batch 1, input already prepared) with one CPU thread
  (ONNX Runtime intra_op_num_threads=1, torch.set_num_threads(1)): fp32 and int8 ONNX of the
  default model, the default model in PyTorch, the seed model (seed_transformer) in PyTorch and
  in ONNX Runtime; the ratio seed-in-PyTorch / default-in-ONNX-Runtime;
- the whole ``Engine.predict`` path from a 90-frame holistic136 LandmarkSequence (layout mapping,
  aspect, resampling, model, softmax, top-5);
- batch throughput (sequences/s, batch 64) with 1 and 2 threads;
- model file sizes (fp32, int8);
- fidelity: the largest |ONNX - PyTorch| logit difference (default and seed, batch of 64 with
  missing points) and the largest int8 - fp32 probability change; with ``--val-cache`` (a cache
  holding INCLUDE-50 val, e.g. ``islr import include-json include50/val --out C --split val``)
  and ``--run`` (a trained default model), how many val videos int8 and fp32 give the same top-1.
Without ``--run`` the models are freshly initialised with the shipped default settings (latency
and size do not depend on the weights): the default = the model and features of
islr/configs/default.yaml on hands_pose75 x, y, 50 classes (INCLUDE-50); the seed = seed_transformer (384 wide,
4 layers) on holistic136 x, y, z raw, 60 frames, 123 classes, as in the seed notebook.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "islr" / "configs" / "default.yaml"
SEED_CONFIG = DEFAULT_CONFIG.with_name("seed.yaml")


def _spec(kind: str):
    from islr.features import FeatureConfig
    from islr.models import ModelConfig, ModelSpec

    if kind == "seed":  # the seed notebook's model on its 408 raw inputs (holistic136 x, y, z)
        from islr.training import load_config

        features = load_config(SEED_CONFIG).features.for_layout("holistic136")
        labels = [f"sign-{i:03d}" for i in range(123)]
        return ModelSpec(ModelConfig("seed_transformer"), features, "holistic136", 3, labels)
    labels = [f"sign-{i:02d}" for i in range(50)]
    features, model = FeatureConfig(), ModelConfig("conv_transformer")
    if DEFAULT_CONFIG.is_file():  # the shipped recipe's model and input settings
        import yaml

        cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
        features = FeatureConfig(**cfg.get("features", {}))
        model = ModelConfig(**cfg.get("model", {}))
    return ModelSpec(model, features, "hands_pose75", 2, labels)


def _make_run(kind: str, root: Path) -> Path:
    import torch

    from islr.models import save_checkpoint

    torch.manual_seed(0)
    spec = _spec(kind)
    model = spec.build().eval()
    # nn.TransformerEncoder starts with identical copies of one layer, and the ONNX exporter
    # stores identical weights once: perturb every weight so sizes are those of a trained model.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    save_checkpoint(root / kind / "best.pt", spec, model.state_dict())
    return root / kind


def _timed(fn, repeats: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
        "mean_ms": statistics.fmean(ordered),
    }


def _input(engine, batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (batch, engine.seq_len, engine.n_points, engine.n_coords)
    x = rng.random(shape, dtype=np.float32)
    x[:, ::4, : engine.n_points // 3] = np.nan  # some undetected points, as in real data
    return x


def _fidelity(engines: dict, val_cache: Path | None) -> dict[str, object]:
    """ONNX vs PyTorch logits, int8 vs fp32 probabilities, and int8 vs fp32 top-1 on val."""
    out: dict[str, object] = {}
    for kind in ("default", "seed"):
        onnx, torch_engine = engines[f"{kind} onnx fp32"], engines[f"{kind} torch"]
        x = _input(onnx, 64, seed=2)
        diff = np.abs(onnx.logits_batch(x) - torch_engine.logits_batch(x)).max()
        out[f"max |ONNX - PyTorch| logit, {kind}, batch 64"] = f"{diff:.1e}"
    fp32, int8 = engines["default onnx fp32"], engines["default onnx int8"]
    x = _input(fp32, 64, seed=3)
    change = np.abs(fp32.predict_prepared(x) - int8.predict_prepared(x)).max()
    out["max |int8 - fp32| probability, default, batch 64"] = f"{change:.3f}"
    if val_cache is not None:
        from islr.landmarks import load_cache_arrays

        entries, seqs = load_cache_arrays(val_cache, "val")
        top_fp32 = fp32.predict_batch(seqs).argmax(axis=1)
        top_int8 = int8.predict_batch(seqs).argmax(axis=1)
        truth = np.array([fp32.labels.index(e.label) if e.label in fp32.labels else -1
                          for e in entries])  # fmt: skip
        agree = int((top_fp32 == top_int8).sum())
        out[f"int8 top-1 = fp32 top-1 on {val_cache.name} val"] = f"{agree}/{len(entries)}"
        out["fp32 val top-1 (the model's accuracy there)"] = f"{(top_fp32 == truth).mean():.4f}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained default-model run (else fresh)")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--val-cache", type=Path, help="a cache with a val split: int8 vs fp32 top-1 agreement"
    )
    args = parser.parse_args()

    import torch

    from islr.export import export_onnx
    from islr.inference import Engine
    from islr.landmarks import LandmarkSequence, get_layout

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="islr-bench-") as tmp:
        root = Path(tmp)
        runs = {"default": args.run or _make_run("default", root), "seed": _make_run("seed", root)}
        files = {}
        for kind, run in runs.items():
            files[f"{kind} fp32"] = export_onnx(run, root / f"{kind}.onnx").path
            files[f"{kind} int8"] = export_onnx(run, root / f"{kind}.int8.onnx", int8=True).path
        sizes = {name: path.stat().st_size / 1e6 for name, path in files.items()}

        torch.set_num_threads(1)
        engines = {
            "default onnx fp32": Engine.load(files["default fp32"], threads=1),
            "default onnx int8": Engine.load(files["default int8"], threads=1),
            "default torch": Engine.load(runs["default"], threads=1),
            "seed onnx fp32": Engine.load(files["seed fp32"], threads=1),
            "seed torch": Engine.load(runs["seed"], threads=1),
        }
        for name, engine in engines.items():
            x = _input(engine, 1)
            results[f"latency 1 seq, 1 thread: {name}"] = _summary(
                _timed(lambda e=engine, x=x: e.logits_batch(x), args.repeats)
            )

        engine = engines["default onnx fp32"]
        data = np.random.default_rng(1).random((90, 136, 3), dtype=np.float32)
        data[::3, :21] = np.nan
        seq = LandmarkSequence(
            data, get_layout("holistic136").name, extra={"image_width": 1280, "image_height": 720}
        )
        results["Engine.predict(90-frame holistic136 sequence), onnx fp32, 1 thread"] = _summary(
            _timed(lambda: engine.predict(seq, top_k=5), args.repeats)
        )

        fidelity = _fidelity(engines, args.val_cache)

        throughput = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, path in (
                ("default onnx fp32", files["default fp32"]),
                ("default onnx int8", files["default int8"]),
                ("default torch", runs["default"]),
                ("seed torch", runs["seed"]),
            ):
                eng = Engine.load(path, threads=threads)
                x = _input(eng, 64)
                per_batch = statistics.median(_timed(lambda e=eng, x=x: e.logits_batch(x), 15, 3))
                throughput[f"{name}, {threads} thread(s)"] = 64 / (per_batch / 1000)

    import os

    print(f"machine: {os.cpu_count()} CPUs, load average before the figures: {os.getloadavg()}")
    ort_ms = results["latency 1 seq, 1 thread: default onnx fp32"]["median_ms"]
    seed_ms = results["latency 1 seq, 1 thread: seed torch"]["median_ms"]
    print("\n== latency of one sequence (median / p90 ms) ==")
    for name, r in results.items():
        print(f"{name:72s} {r['median_ms']:8.3f} {r['p90_ms']:8.3f}")
    default_spec = _spec("default")
    print(f"default model: {default_spec.model}, seq_len {default_spec.features.seq_len}")
    print(f"\nseed model in PyTorch / default model in ONNX Runtime: {seed_ms / ort_ms:.1f}x")
    print("target: default ONNX fp32 <= 2 ms ->", "met" if ort_ms <= 2.0 else "NOT met")
    print("\n== batch throughput (batch 64, sequences/s) ==")
    for name, value in throughput.items():
        print(f"{name:40s} {value:10.0f}")
    print("\n== model files (MB) ==")
    for name, mb in sizes.items():
        print(f"{name:20s} {mb:8.2f}")
    print(
        "targets: default fp32 <= 8 MB ->",
        "met" if sizes["default fp32"] <= 8 else "NOT met",
        "| default int8 <= 3 MB ->",
        "met" if sizes["default int8"] <= 3 else "NOT met",
    )
    print("\n== fidelity ==")
    for name, value in fidelity.items():
        print(f"{name:64s} {value}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "latency": results,
                    "throughput_seq_per_s": throughput,
                    "sizes_mb": sizes,
                    "ratio_seed_torch_to_default_onnx": seed_ms / ort_ms,
                    "fidelity": fidelity,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
