"""Self-describing checkpoints: weights + everything needed to rebuild and feed the model.

A checkpoint (``best.pt`` / ``last.pt``) is a ``torch.save`` dict::

    format: "islr-checkpoint", format_version: 1, islr_version
    model: ModelConfig as dict        features: FeatureConfig as dict
    layout: layout name               n_coords: 2 or 3
    layout_def: the layout's parts (component + MediaPipe indices), as in the ONNX metadata
    labels: [sign names, index order] state_dict: the SignClassifier weights
    members: 1, or N for an ensemble of N classifiers (SignEnsemble's weights)
    extra: anything else (training config, epoch, metrics, optimiser state for --resume...)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from islr import __version__
from islr.errors import ModelError
from islr.features.config import FeatureConfig
from islr.landmarks import Layout, atomic_write_bytes, get_layout
from islr.models.classifier import ModelConfig, SignClassifier
from islr.models.ensemble import SignEnsemble

CHECKPOINT_FORMAT = "islr-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class ModelSpec:
    """What a trained model is, apart from its weights."""

    model: ModelConfig
    features: FeatureConfig
    layout: str
    n_coords: int
    labels: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    members: int = 1  # > 1: an ensemble of that many classifiers of this spec
    layout_def: Layout | None = None  # the layout's points, so a checkpoint needs no registry

    def layout_object(self) -> Layout:
        """The model's layout: the one the checkpoint carries, else the registered one."""
        return self.layout_def if self.layout_def is not None else get_layout(self.layout)

    def build(self) -> SignClassifier | SignEnsemble:
        def one() -> SignClassifier:
            return SignClassifier(
                self.model, self.features, self.layout_object(), self.n_coords, len(self.labels)
            )

        return one() if self.members == 1 else SignEnsemble([one() for _ in range(self.members)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": asdict(self.model),
            "features": asdict(self.features),
            "layout": self.layout,
            "layout_def": self.layout_object().to_dict(),
            "n_coords": self.n_coords,
            "labels": list(self.labels),
            "members": self.members,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], extra: dict | None = None) -> ModelSpec:
        features = dict(d["features"])
        return cls(
            model=ModelConfig(**d["model"]),
            features=FeatureConfig(**features),
            layout=d["layout"],
            n_coords=int(d["n_coords"]),
            labels=list(d["labels"]),
            extra=extra or {},
            members=int(d.get("members", 1)),
            # older checkpoints name a registered layout only
            layout_def=Layout.from_dict(d["layout_def"]) if d.get("layout_def") else None,
        )


def save_checkpoint(path: str | Path, spec: ModelSpec, state_dict: dict, **extra: Any) -> Path:
    """Write a checkpoint atomically (a killed run never leaves a half ``best.pt``)."""
    import io

    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "islr_version": __version__,
        **spec.to_dict(),
        "state_dict": state_dict,
        "extra": {**spec.extra, **extra},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, with clear errors for a missing or foreign file."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint (train one with `islr train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a corrupt file
        raise ModelError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not an islr checkpoint")
    if payload.get("format_version", 0) > CHECKPOINT_VERSION:
        raise ModelError(f"{path}: written by a newer islr; upgrade islr")
    return payload


def load_classifier(path: str | Path) -> tuple[SignClassifier, ModelSpec]:
    """Rebuild the model of a checkpoint (eval mode) and its spec."""
    payload = read_checkpoint(path)
    spec = ModelSpec.from_dict(payload, payload.get("extra", {}))
    model = spec.build()
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not fit the model they describe ({e})") from e
    return model.eval(), spec


def ensemble_checkpoints(paths: list[str | Path], out: str | Path, **extra: Any) -> Path:
    """One ensemble checkpoint of several checkpoints trained alike (same spec, other seeds)."""
    loaded = [load_classifier(p) for p in paths]
    if not loaded:
        raise ModelError("an ensemble needs at least one checkpoint")
    first = loaded[0][1]
    for (_, spec), path in zip(loaded, paths, strict=True):
        if spec.members != 1:
            raise ModelError(f"{path}: already an ensemble; give single-model checkpoints")
        if spec.to_dict() != first.to_dict():
            raise ModelError(
                f"{path}: another architecture, input pipeline or label set than {paths[0]}; "
                "an ensemble's members must be trained alike"
            )
    ensemble = SignEnsemble([m for m, _ in loaded])
    spec = ModelSpec(
        first.model, first.features, first.layout, first.n_coords, first.labels,
        layout_def=first.layout_def,
        extra={"member_seeds": [s.extra.get("train_config", {}).get("seed") for _, s in loaded],
               "train_config": first.extra.get("train_config"), **extra},
        members=len(loaded),
    )  # fmt: skip
    return save_checkpoint(out, spec, ensemble.state_dict())
