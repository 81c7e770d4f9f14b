"""Training configuration: plain dataclasses, loaded from YAML, overridable with ``key=value``."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from islr.configs import CONFIG_DIR, DEFAULT_CONFIG, config_names
from islr.errors import ConfigError
from islr.features.config import AugmentConfig, FeatureConfig
from islr.models.classifier import ModelConfig
from islr.streaming import StreamConfig


@dataclass
class DataConfig:
    train_split: str = "train"
    val_split: str = "val"
    val_from_train: float = 0.0  # > 0: a seeded stratified split of train replaces val
    label_file: str | None = None  # JSON {sample id: label}; only these samples, these labels


@dataclass
class OptimConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    outlier_frac: float = 0.0  # made-up non-signs added per batch (x batch size), flat targets


@dataclass
class ScheduleConfig:
    """``plateau`` (the seed's ReduceLROnPlateau on val loss), ``onecycle`` or ``cosine``."""

    name: str = "onecycle"
    warmup_frac: float = 0.1  # onecycle / cosine
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    min_lr: float = 1e-6


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    early_stopping: int = 0  # patience in epochs without val improvement; 0 = off
    ema: float = 0.0  # decay of the weight average (e.g. 0.99); 0 = off
    seed: int = 0
    threads: int = 0  # CPU cores the run uses (torch threads); 0 = all cores
    device: str = "auto"  # auto (a GPU when there is one), cpu, cuda, cuda:N or mps
    workers: int = -1  # processes preparing batches; 0 = none (in the loop); -1 = by cores, device
    precision: str = "fp32"  # fp32 or bf16 (autocast of the forward pass, on CUDA only)
    # on CUDA: forward + backward replayed as a CUDA graph per batch shape (islr.training.
    # graphed_step); off until measured on a GPU (its tests run only where CUDA is)
    cuda_graphs: bool = False
    checkpoint_every: int = (
        0  # last.pt every N epochs; 0 = at most once a minute; always at the end
    )
    # stream settings the recipe brings to its models' exports (islr.inference.StreamConfig),
    # e.g. the unknown-sign threshold calibrated for its probabilities
    stream: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name) if name in known else None
        if dataclasses.is_dataclass(default) and name != "kwargs":
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    cfg = _build(TrainConfig, values or {}, "config")
    try:
        StreamConfig.from_dict(cfg.stream)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config.stream: {e}") from e
    return cfg


def resolve_config(ref: str | Path | None) -> Path:
    """A shipped recipe's name (``default``, ``seed``) or a YAML path -> the file.

    No config at all means the documented default recipe, ``default``.
    """
    ref = DEFAULT_CONFIG if ref is None else ref
    path = Path(ref)
    if path.is_file():
        return path
    if str(ref) in config_names():
        return CONFIG_DIR / f"{ref}.yaml"
    raise ConfigError(
        f"{ref}: no such config file, nor a shipped config (shipped: {', '.join(config_names())})"
    )


def load_config(ref: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Dataclass defaults <- YAML recipe <- ``key.sub=value`` overrides (values parsed as YAML).

    ``ref`` is a shipped recipe's name or a YAML file; None means ``default``.
    """
    path = resolve_config(ref)
    try:
        values: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    apply_overrides(values, overrides)
    return config_from_dict(values)


def apply_overrides(values: dict[str, Any], overrides: list[str] | None) -> None:
    """``key.sub=value`` items (values parsed as YAML) into a config's nested mapping."""
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        _set_dotted(values, key.strip(), yaml.safe_load(raw))


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
    node[parts[-1]] = value


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    from islr.landmarks import atomic_write_bytes

    text = yaml.safe_dump(_plain(cfg.to_dict()), sort_keys=False)
    atomic_write_bytes(Path(path), text.encode())


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
