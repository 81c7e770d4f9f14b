"""Training the sign segmenter (:mod:`islr.models.segmenter`) on synthesised streams.

Every step draws a fresh batch of streams (:mod:`islr.datasets.streams`) from the clips of the
chosen cache splits, crops each to ``crop_seconds``, and fits the per-frame B/I/O tags with a
weighted cross-entropy (``B`` is rare and is what splits two signs with no rest between them).
The run folder gets ``segmenter.pt`` (config + weights), ``segmenter.onnx`` (with its metadata:
see :mod:`islr.modelfile.segmenter`), ``config.yaml`` and ``history.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from islr.datasets.streams import StreamRecipe, random_streams
from islr.errors import ConfigError, DatasetError
from islr.export import export_segmenter
from islr.features import prepare_model_input
from islr.landmarks import LandmarkCache, atomic_write_bytes
from islr.models.device import device_label, resolve_device
from islr.models.segmenter import SegmenterConfig, SignSegmenter, shift_tags
from islr.models.threads import torch_threads
from islr.training.config import _build, _plain, apply_overrides

IGNORE = -100


@dataclass
class SegmenterTrainConfig:
    """The recipe of ``islr train-segmenter`` (``islr/configs/segmenter/*.yaml``)."""

    splits: str = "train"  # comma-separated cache splits whose clips make the streams
    model: SegmenterConfig = field(default_factory=SegmenterConfig)
    streams: StreamRecipe = field(default_factory=StreamRecipe)
    steps: int = 1500
    batch_size: int = 16
    crop_seconds: float = 8.0
    lr: float = 3e-3
    weight_decay: float = 0.01
    tag_weights: tuple[float, float, float] = (1.0, 3.0, 1.0)  # O, B, I
    seed: int = 0
    threads: int = 1
    device: str = "auto"  # auto (a GPU when there is one), cpu, cuda, cuda:N or mps

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def load_segmenter_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> SegmenterTrainConfig:
    """Defaults <- YAML file <- ``key.sub=value`` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read the segmenter recipe ({e})") from e
    apply_overrides(values, overrides)
    return _build(SegmenterTrainConfig, values, "segmenter config")


def load_clips(
    cache: LandmarkCache, splits: list[str], layout: str, n_coords: int
) -> list[tuple[str, np.ndarray]]:
    """``(label, (T, N, C) array)`` of every sample of ``splits``, in ``layout``, aspect-corrected
    (the frames a stream of the model's layout carries)."""
    clips = []
    for split in splits:
        for entry in cache.require_entries(split):
            seq = cache.load(entry)
            clips.append((entry.label, prepare_model_input(seq, layout, None, n_coords)))
    if len(clips) < 2:
        raise DatasetError(f"{cache.root}: splits {splits} hold {len(clips)} clips; need 2 or more")
    return clips


def stream_batch(
    clips: list[tuple[str, np.ndarray]],
    cfg: SegmenterTrainConfig,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` streams cropped (or NaN-padded) to ``crop_seconds``: frames, tags."""
    rng = np.random.default_rng(seed)
    crop = int(round(cfg.crop_seconds * cfg.streams.fps))
    streams = random_streams(clips, cfg.model.layout, cfg.batch_size, seed, cfg.streams)
    n, c = streams[0].frames.shape[1:]
    frames = np.full((len(streams), crop, n, c), np.nan, dtype=np.float32)
    tags = np.full((len(streams), crop), IGNORE, dtype=np.int64)
    for i, s in enumerate(streams):
        start = int(rng.integers(0, max(1, len(s.tags) - crop) + 1))
        part = slice(start, start + crop)
        k = len(s.tags[part])
        frames[i, :k], tags[i, :k] = s.frames[part], s.tags[part]
    return frames, tags


def train_segmenter(
    cfg: SegmenterTrainConfig,
    data: str | Path,
    out_dir: str | Path,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train, write the run folder (module doc), return its summary."""
    device = resolve_device(cfg.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = LandmarkCache(data)
    clips = load_clips(
        cache, [s.strip() for s in cfg.splits.split(",")], cfg.model.layout, cfg.model.n_coords
    )
    atomic_write_bytes(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    torch.manual_seed(cfg.seed)
    with torch_threads(cfg.threads):
        model = SignSegmenter(cfg.model).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1
        )
        weights = torch.tensor(cfg.tag_weights, dtype=torch.float32, device=device)
        history = []
        started = time.perf_counter()
        model.train()
        for step in range(cfg.steps):
            frames, tags = stream_batch(clips, cfg, cfg.seed * 1_000_003 + step)
            tags_t = torch.from_numpy(tags).to(device, non_blocking=True)
            target = shift_tags(tags_t, cfg.model.lookahead, fill=IGNORE)
            logits = model(torch.from_numpy(frames).to(device, non_blocking=True))
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                target.reshape(-1),
                weight=weights,
                ignore_index=IGNORE,
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            history.append(loss.detach())
            if on_step is not None and (device.type == "cpu" or (step + 1) % 25 == 0):
                on_step(step + 1, float(history[-1]))
        history = [round(float(v), 5) for v in torch.stack(history).cpu()]
        model.eval().cpu()  # the ONNX export and the checkpoint are made from the CPU
    checkpoint = {"config": cfg.model.to_dict(), "state_dict": model.state_dict()}
    buf = _torch_bytes(checkpoint)
    atomic_write_bytes(out / "segmenter.pt", buf)
    onnx_path = export_segmenter(model, out / "segmenter.onnx", trained_on=cfg.splits)
    summary = {
        "steps": cfg.steps,
        "seconds": round(time.perf_counter() - started, 1),
        "device": device_label(device),
        "clips": len(clips),
        "final_loss": float(np.mean(history[-50:])),
        "onnx": str(onnx_path),
        "loss": history,
    }
    atomic_write_bytes(out / "history.json", json.dumps(summary).encode())
    return summary


def _torch_bytes(obj: Any) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def load_segmenter(path: str | Path) -> SignSegmenter:
    """A trained segmenter from its ``segmenter.pt`` (eval mode)."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = SignSegmenter(SegmenterConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
