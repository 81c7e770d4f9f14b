"""The training loop: AdamW, label smoothing, schedules, EMA, early stopping, checkpoints, resume.

Everything a run writes goes to RUN_DIR: ``best.pt``, ``last.pt`` (with the optimiser, scheduler,
EMA and RNG states, for ``--resume``), ``history.json``, ``results.png``, ``labels.json``,
``file_to_label.json``, ``config.yaml``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from islr.errors import ConfigError, ModelError
from islr.features import mixup
from islr.landmarks import atomic_write_bytes, get_layout
from islr.models import ModelSpec, count_parameters, read_checkpoint, save_checkpoint
from islr.models.threads import torch_threads
from islr.training.config import TrainConfig, save_config
from islr.training.data import (
    TrainingData,
    iterate_batches,
    load_training_data,
    make_batch,
    make_outlier_batch,
)
from islr.training.segments import stream_segment_pool, swap_in_segments


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    seconds: float


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_acc: float | None
    epochs_run: int
    seconds: float
    n_parameters: int
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False


StepCallback = Callable[[int, int, int, float, float], None]  # epoch, step, steps, loss, acc
EpochCallback = Callable[[EpochRecord], None]


class WeightAverage:
    """Exponential moving average of the weights (buffers such as BatchNorm stats are copied)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.parameter_names = {name for name, _ in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if k in self.parameter_names:
                self.state[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.state[k].copy_(v)


def _scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    s = cfg.schedule
    total = max(1, cfg.optim.epochs * steps_per_epoch)
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=s.plateau_factor, patience=s.plateau_patience,
            min_lr=s.min_lr,
        )  # fmt: skip
    if s.name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.optim.lr, total_steps=total, pct_start=s.warmup_frac,
            anneal_strategy="cos", div_factor=25.0, final_div_factor=1e3,
        )  # fmt: skip
    if s.name == "cosine":
        warmup = int(s.warmup_frac * total)
        floor = s.min_lr / cfg.optim.lr

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise ConfigError(f"schedule.name must be plateau, onecycle or cosine, got {s.name!r}")


def _soft_cross_entropy(logits: torch.Tensor, soft: torch.Tensor, smoothing: float) -> torch.Tensor:
    k = logits.shape[1]
    target = soft * (1 - smoothing) + smoothing / k
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


@torch.no_grad()
def evaluate_arrays(
    model: torch.nn.Module, batch_iter, targets: np.ndarray, smoothing: float = 0.0
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over prepared batches (eval mode)."""
    model.eval()
    losses, correct, n = 0.0, 0, 0
    for x, idx in batch_iter:
        logits = model(torch.from_numpy(x))
        y = torch.from_numpy(targets[idx])
        losses += F.cross_entropy(logits, y, label_smoothing=smoothing, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        n += len(idx)
    return losses / max(n, 1), correct / max(n, 1)


def train(
    cfg: TrainConfig,
    cache_dir: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    data: TrainingData | None = None,
) -> TrainResult:
    """Train ``cfg`` on the cache, writing everything into ``run_dir``."""
    with torch_threads(cfg.threads or os.cpu_count() or 1):
        return _train(cfg, cache_dir, run_dir, resume, on_step, on_epoch, data)


def _train(
    cfg: TrainConfig,
    cache_dir: str | Path,
    run_dir: str | Path,
    resume: bool,
    on_step: StepCallback | None,
    on_epoch: EpochCallback | None,
    data: TrainingData | None,
) -> TrainResult:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if data is None:
        data = load_training_data(
            str(cache_dir), cfg.data.train_split, cfg.data.val_split, cfg.data.val_from_train,
            cfg.seed, cfg.data.label_file,
        )  # fmt: skip
    features = cfg.features.for_layout(data.layout, data.has_z)
    spec = ModelSpec(cfg.model, features, data.layout, data.n_coords, data.labels)
    try:
        model = spec.build()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {cfg.model.name!r} cannot be built from this config: {e}") from e
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    layout = get_layout(data.layout)
    steps_per_epoch = math.ceil(len(data.train) / cfg.optim.batch_size)
    scheduler = _scheduler(cfg, optimizer, steps_per_epoch)
    ema = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    history: list[EpochRecord] = []
    best = {"epoch": 0, "acc": -1.0, "loss": math.inf}
    start_epoch = 1
    if resume:
        state = _load_train_state(run_dir, spec)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.state = state["ema"]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        history = [EpochRecord(**r) for r in state["history"]]
        best = state["best"]
        start_epoch = history[-1].epoch + 1 if history else 1

    save_config(cfg, run_dir / "config.yaml")
    _write_json(run_dir / "labels.json", data.labels)
    _write_json(run_dir / "file_to_label.json", data.file_to_label)
    meta = {"train_config": cfg.to_dict(), "n_train": len(data.train)}
    segments = None
    if cfg.augment.p_stream_segment > 0:
        segments = stream_segment_pool(
            data.train.arrays, data.train.targets, len(data.labels), data.layout,
            cfg.augment.stream_segments_per_clip, cfg.seed,
        )  # fmt: skip
    t_start = time.perf_counter() - sum(r.seconds for r in history)
    stopped_early = False
    for epoch in range(start_epoch, cfg.optim.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total_loss, total_correct, seen = 0.0, 0, 0
        for step, idx in enumerate(iterate_batches(data.train, cfg.optim.batch_size, rng), 1):
            y = data.train.targets[idx]
            arrays = [data.train.arrays[i] for i in idx]
            if segments is not None:
                arrays = swap_in_segments(arrays, y, segments, cfg.augment.p_stream_segment, rng)
            x = make_batch(arrays, features.seq_len, data.layout, cfg.augment, rng)
            soft = np.eye(len(data.labels), dtype=np.float32)[y]
            n_out = int(round(cfg.optim.outlier_frac * len(idx)))
            if n_out:  # outlier exposure: made-up non-signs must get a flat distribution
                made_up = make_outlier_batch(
                    data.train, n_out, features.seq_len, layout, cfg.augment, rng
                )
                x = np.concatenate([x, made_up])
                flat = np.full((n_out, len(data.labels)), 1 / len(data.labels), np.float32)
                soft = np.concatenate([soft, flat])
            if cfg.augment.p_mixup > 0 and rng.random() < cfg.augment.p_mixup and len(idx) > 1:
                x, soft = mixup(x, soft, cfg.augment.mixup_alpha, rng)
            logits = model(torch.from_numpy(x))
            loss = _soft_cross_entropy(logits, torch.from_numpy(soft), cfg.optim.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            if cfg.schedule.name != "plateau":
                scheduler.step()
            if ema is not None:
                ema.update(model)
            total_loss += loss.item() * len(idx)
            total_correct += int((logits[: len(idx)].argmax(1).numpy() == y).sum())
            seen += len(idx)
            if on_step:
                on_step(epoch, step, steps_per_epoch, total_loss / seen, total_correct / seen)
        eval_model = _with_weights(spec, ema.state) if ema is not None else model
        val_loss = val_acc = None
        if data.val is not None:
            val_loss, val_acc = evaluate_arrays(
                eval_model, _eval_batches(data.val, features.seq_len, data.layout),
                data.val.targets, cfg.optim.label_smoothing,
            )  # fmt: skip
            if cfg.schedule.name == "plateau":
                scheduler.step(val_loss)
        record = EpochRecord(
            epoch, total_loss / seen, total_correct / seen, val_loss, val_acc,
            optimizer.param_groups[0]["lr"], time.perf_counter() - t0,
        )  # fmt: skip
        history.append(record)
        improved = data.val is None or (val_acc, -val_loss) > (best["acc"], -best["loss"])
        weights = eval_model.state_dict()
        if improved:
            best = {"epoch": epoch, "acc": val_acc if val_acc is not None else -1.0,
                    "loss": val_loss if val_loss is not None else math.inf}  # fmt: skip
            save_checkpoint(
                run_dir / "best.pt", spec, weights, epoch=epoch, val_acc=val_acc, **meta
            )
        train_state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": ema.state if ema is not None else None,
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": [asdict(r) for r in history],
            "best": best,
        }
        save_checkpoint(run_dir / "last.pt", spec, weights, epoch=epoch, train_state=train_state,
                        **meta)  # fmt: skip
        _write_json(run_dir / "history.json", [asdict(r) for r in history])
        if on_epoch:
            on_epoch(record)
        if (
            cfg.early_stopping
            and data.val is not None
            and epoch - best["epoch"] >= cfg.early_stopping
        ):
            stopped_early = True
            break
    plot_history(history, run_dir / "results.png")
    return TrainResult(
        run_dir=run_dir,
        best_epoch=best["epoch"],
        best_val_acc=best["acc"] if data.val is not None else None,
        epochs_run=len(history),
        seconds=time.perf_counter() - t_start,
        n_parameters=count_parameters(model),
        history=history,
        stopped_early=stopped_early,
    )


def _eval_batches(samples, seq_len: int, layout: str, batch_size: int = 256):
    rng = np.random.default_rng(0)  # unused: no augmentation at evaluation
    for idx in iterate_batches(samples, batch_size, None):
        yield make_batch([samples.arrays[i] for i in idx], seq_len, layout, None, rng), idx


def _with_weights(spec: ModelSpec, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = spec.build()
    model.load_state_dict(state)
    return model.eval()


def _load_train_state(run_dir: Path, spec: ModelSpec) -> dict[str, Any]:
    payload = read_checkpoint(run_dir / "last.pt")
    state = payload.get("extra", {}).get("train_state")
    if state is None:
        raise ModelError(f"{run_dir}/last.pt has no training state to resume from")
    if payload["labels"] != spec.labels or payload["layout"] != spec.layout:
        raise ModelError(
            f"{run_dir}/last.pt was trained on other labels or another layout; "
            "resume with the same data, or train into a new folder"
        )
    return state


def _write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, json.dumps(value, indent=1, ensure_ascii=False).encode())


def plot_history(history: list[EpochRecord], path: Path) -> None:
    """``results.png``: loss and accuracy per epoch, train and val."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [r.train_loss for r in history], label="train")
    ax_acc.plot(epochs, [r.train_acc for r in history], label="train")
    if any(r.val_loss is not None for r in history):
        ax_loss.plot(epochs, [r.val_loss for r in history], label="val")
        ax_acc.plot(epochs, [r.val_acc for r in history], label="val")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="accuracy", xlabel="epoch", ylim=(0, 1.01))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
