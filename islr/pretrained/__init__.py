"""Models that ship inside the package, addressable by name wherever a model path is accepted.

``include50``: the INCLUDE-50 classifier (50 Indian signs), ``include50.onnx`` (what predicts and
serves, needs no PyTorch) and ``include50.pt`` (its checkpoint, for ``islr export`` and
fine-tuning), with its model card ``include50.md``. ``make pretrained`` rebuilds them.
"""

from __future__ import annotations

from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent
PRETRAINED_MODELS = ("include50",)


def pretrained_names() -> list[str]:
    return list(PRETRAINED_MODELS)


def is_pretrained_name(ref: str | Path) -> bool:
    """``ref`` names a shipped model and is not an existing path (a path always wins)."""
    return str(ref) in PRETRAINED_MODELS and not Path(ref).exists()


def pretrained_path(name: str, kind: str = "onnx") -> Path:
    """The shipped file of model ``name``: ``onnx``, ``pt`` (checkpoint) or ``md`` (model card)."""
    from islr.errors import ModelError

    if name not in PRETRAINED_MODELS:
        raise ModelError(f"{name}: no such shipped model (shipped: {', '.join(PRETRAINED_MODELS)})")
    path = PRETRAINED_DIR / f"{name}.{kind}"
    if not path.is_file():
        raise ModelError(
            f"{path}: the shipped model file is missing from this installation; reinstall islr "
            "or rebuild it with `make pretrained`"
        )
    return path


def resolve_model(ref: str | Path, kind: str = "onnx") -> Path:
    """A model reference -> a path: a shipped model's name (``include50``) -> its ``kind`` file;
    anything else is taken as a path (RUN_DIR, ``.pt`` or ``.onnx``)."""
    if is_pretrained_name(ref):
        return pretrained_path(str(ref), kind)
    return Path(ref)
