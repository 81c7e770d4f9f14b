"""Where PyTorch runs: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` -> a ``torch.device``."""

from __future__ import annotations

import re

import torch

from islr.errors import ConfigError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str | None = "auto") -> torch.device:
    """The device ``name`` stands for; ``auto`` (or None) is the first CUDA GPU, else Apple's
    MPS, else the CPU. A GPU that is asked for by name and is absent is a :class:`ConfigError`
    saying so, never a silent fall back to the CPU."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if match := re.fullmatch(r"cuda(?::(\d+))?", name):
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else "sees no CUDA GPU"
            raise ConfigError(
                f"device {name!r}: this PyTorch ({torch.__version__}) {build}; "
                "use --device cpu (or auto, which takes a GPU only when there is one)"
            )
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r}: only {torch.cuda.device_count()} CUDA GPU(s) here "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
        return torch.device("cuda", index)
    if name == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps': Apple's MPS is not available here; use --device cpu")
        return torch.device("mps")
    raise ConfigError(f"device {name!r} is not one of {DEVICE_CHOICES}")


def device_label(device: torch.device) -> str:
    """``cpu``, ``mps`` or ``cuda:0 (NVIDIA H200)``: what a run records about where it ran."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
