"""The training loop: AdamW, label smoothing, schedules, EMA, early stopping, checkpoints, resume.

Everything a run writes goes to RUN_DIR: ``best.pt``, ``last.pt`` (with the optimiser, scheduler,
EMA and RNG states, for ``--resume``), ``history.json``, ``results.png``, ``labels.json``,
``file_to_label.json``, ``config.yaml``. ``history.json`` is written every epoch; ``last.pt`` and
``best.pt`` (kept in memory until then) every ``checkpoint_every`` epochs, by default at most once
a minute, and always at the end: a fast run is not slowed by writing its optimiser state every
epoch, and an interrupted one resumes from its last write.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from islr.errors import ConfigError, ModelError
from islr.landmarks import atomic_write_bytes
from islr.models import ModelSpec, count_parameters, read_checkpoint, save_checkpoint
from islr.models.device import device_label, resolve_device
from islr.models.threads import torch_threads
from islr.training.batches import AugmentedBatches, BatchRecipe, BatchSource, auto_workers
from islr.training.config import TrainConfig, save_config
from islr.training.data import TrainingData, iterate_batches, load_training_data, make_batch
from islr.training.graphed_step import GraphedForwardBackward
from islr.training.segments import stream_segment_pool


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    seconds: float
    device: str = "cpu"  # where the epoch ran (a resumed run may have moved)


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
    device: str = "cpu"


StepCallback = Callable[[int, int, int, float, float], None]  # epoch, step, steps, loss, acc
EpochCallback = Callable[[EpochRecord], None]

PRECISIONS = ("fp32", "bf16")
CHECKPOINT_SECONDS = 60.0  # checkpoint_every=0: last.pt at most this often (and at the end)


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
def evaluate_batches(
    model: torch.nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    smoothing: float = 0.0,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``(input, label index)`` batches (eval mode, in
    full precision; one synchronisation with the device at the end)."""
    model.eval()
    loss, correct, n = 0.0, 0, 0
    for x, y in batches:
        logits = model(x).float()
        loss = loss + F.cross_entropy(logits, y, label_smoothing=smoothing, reduction="sum")
        correct = correct + (logits.argmax(1) == y).sum()
        n += len(y)
    return float(loss) / max(n, 1), int(correct) / max(n, 1)


def train(
    cfg: TrainConfig,
    cache_dir: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    data: TrainingData | None = None,
) -> TrainResult:
    """Train ``cfg`` on the cache, writing everything into ``run_dir``.

    ``cfg.device`` says where (``auto``: a GPU when there is one); ``cfg.threads`` how many CPU
    cores the run may use (0: all): PyTorch's threads, and what ``cfg.workers`` batch workers
    are sized by when it is -1 (:func:`auto_workers`)."""
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    device = resolve_device(cfg.device)
    cores = cfg.threads or os.cpu_count() or 1
    workers = cfg.workers if cfg.workers >= 0 else auto_workers(cores, device.type != "cpu")
    with torch_threads(cores):
        return _train(cfg, cache_dir, run_dir, resume, on_step, on_epoch, data, device, workers)


def _train(
    cfg: TrainConfig,
    cache_dir: str | Path,
    run_dir: str | Path,
    resume: bool,
    on_step: StepCallback | None,
    on_epoch: EpochCallback | None,
    data: TrainingData | None,
    device: torch.device,
    workers: int,
) -> TrainResult:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
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
    model.to(device)
    on_cuda = device.type == "cuda"
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
        fused=True if on_cuda else None,  # one kernel for all parameters instead of dozens
    )  # fmt: skip
    segments = None
    if cfg.augment.p_stream_segment > 0:
        segments = stream_segment_pool(
            data.train.arrays, data.train.targets, len(data.labels), data.layout,
            cfg.augment.stream_segments_per_clip, cfg.seed,
        )  # fmt: skip
    recipe = BatchRecipe(
        cfg.optim.batch_size, features.seq_len, data.layout, len(data.labels), cfg.augment,
        cfg.optim.outlier_frac, cfg.seed,
    )  # fmt: skip
    batches = AugmentedBatches(data.train, recipe, segments)
    steps_per_epoch = batches.steps_per_epoch()
    scheduler = _scheduler(cfg, optimizer, steps_per_epoch)
    ema = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    eval_model = spec.build().to(device).eval() if ema is not None else model
    history: list[EpochRecord] = []
    best = {"epoch": 0, "acc": -1.0, "loss": math.inf}
    start_epoch = 1
    if resume:
        state = _load_train_state(run_dir, spec)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.state = {k: v.to(device) for k, v in state["ema"].items()}
        torch.set_rng_state(state["torch_rng"])
        if on_cuda and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        history = [EpochRecord(**r) for r in state["history"]]
        best = state["best"]
        start_epoch = history[-1].epoch + 1 if history else 1

    save_config(cfg, run_dir / "config.yaml")
    _write_json(run_dir / "labels.json", data.labels)
    _write_json(run_dir / "file_to_label.json", data.file_to_label)
    meta = {"train_config": cfg.to_dict(), "n_train": len(data.train)}
    where = device_label(device)
    # val input never changes: prepared once, kept on the device
    val_batches = None
    if data.val is not None:
        val_batches = [
            (torch.from_numpy(x).to(device), torch.from_numpy(data.val.targets[idx]).to(device))
            for x, idx in _eval_batches(data.val, features.seq_len, data.layout)
        ]
    bf16 = cfg.precision == "bf16" and on_cuda
    # on a GPU every float() waits for the queued steps: the progress is read every few steps
    report_every = 1 if device.type == "cpu" else 10
    source = BatchSource(batches, workers, pin_memory=on_cuda, last_epoch=cfg.optim.epochs)
    graphed = None
    if on_cuda and cfg.cuda_graphs:
        loss_fn = partial(_soft_cross_entropy, smoothing=cfg.optim.label_smoothing)
        graphed = GraphedForwardBackward(model, loss_fn, bf16)
    best_weights: dict[str, torch.Tensor] | None = None  # not yet written to best.pt
    last_write = time.perf_counter()
    t_start = time.perf_counter() - sum(r.seconds for r in history)
    stopped_early = False
    try:
        for epoch in range(start_epoch, cfg.optim.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for step, batch in enumerate(source.epoch(epoch), 1):
                batch = batch.to(device)
                if graphed is not None:
                    loss, logits = graphed.forward_backward(batch.x, batch.soft)
                else:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                        logits = model(batch.x)
                    loss = _soft_cross_entropy(
                        logits.float(), batch.soft, cfg.optim.label_smoothing
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                if cfg.optim.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                optimizer.step()
                if cfg.schedule.name != "plateau":
                    scheduler.step()
                if ema is not None:
                    ema.update(model)
                n = len(batch.y)
                loss_sum += loss.detach() * n
                correct += (logits[:n].argmax(1) == batch.y).sum()
                seen += n
                if on_step and (step % report_every == 0 or step == steps_per_epoch):
                    on_step(epoch, step, steps_per_epoch, float(loss_sum) / seen,
                            int(correct) / seen)  # fmt: skip
            if ema is not None:
                eval_model.load_state_dict(ema.state)
            val_loss = val_acc = None
            if val_batches is not None:
                val_loss, val_acc = evaluate_batches(
                    eval_model, val_batches, cfg.optim.label_smoothing
                )
                if cfg.schedule.name == "plateau":
                    scheduler.step(val_loss)
            record = EpochRecord(
                epoch, float(loss_sum) / seen, int(correct) / seen, val_loss, val_acc,
                optimizer.param_groups[0]["lr"], time.perf_counter() - t0, where,
            )  # fmt: skip
            history.append(record)
            improved = data.val is None or (val_acc, -val_loss) > (best["acc"], -best["loss"])
            if improved:
                best = {"epoch": epoch, "acc": val_acc if val_acc is not None else -1.0,
                        "loss": val_loss if val_loss is not None else math.inf}  # fmt: skip
                best_weights = _cpu_copy(eval_model.state_dict())
            stopped_early = bool(
                cfg.early_stopping
                and data.val is not None
                and epoch - best["epoch"] >= cfg.early_stopping
            )
            final = stopped_early or epoch == cfg.optim.epochs
            if final or _checkpoint_due(cfg.checkpoint_every, epoch, last_write):
                if best_weights is not None:
                    best_acc = best["acc"] if data.val is not None else None
                    save_checkpoint(run_dir / "best.pt", spec, best_weights, epoch=best["epoch"],
                                    val_acc=best_acc, **meta)  # fmt: skip
                    best_weights = None
                train_state = {
                    "model": _cpu_copy(model.state_dict()),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "ema": _cpu_copy(ema.state) if ema is not None else None,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if on_cuda else None,
                    "history": [asdict(r) for r in history],
                    "best": best,
                }
                save_checkpoint(run_dir / "last.pt", spec, _cpu_copy(eval_model.state_dict()),
                                epoch=epoch, train_state=train_state, **meta)  # fmt: skip
                last_write = time.perf_counter()
            _write_json(run_dir / "history.json", [asdict(r) for r in history])
            if on_epoch:
                on_epoch(record)
            if stopped_early:
                break
    finally:
        source.close()
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
        device=where,
    )


def _checkpoint_due(every: int, epoch: int, last_write: float) -> bool:
    if every > 0:
        return epoch % every == 0
    return time.perf_counter() - last_write >= CHECKPOINT_SECONDS


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A snapshot on the CPU (a copy even on the CPU: the model goes on training)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


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
