"""Models register by name; ``create_model(name, ...)`` builds one (the timm way, kept small)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelBuilder = Callable[..., nn.Module]
_MODELS: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: ``builder(n_features, n_classes, seq_len, **kwargs) -> nn.Module``."""

    def wrap(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = builder
        return builder

    return wrap


def model_names() -> list[str]:
    return sorted(_MODELS)


def create_model(
    name: str, n_features: int, n_classes: int, seq_len: int, **kwargs: object
) -> nn.Module:
    """The backbone + head ``name``: ``(B, seq_len, n_features)`` -> ``(B, n_classes)`` logits."""
    if name not in _MODELS:
        from islr.errors import UnknownModelError

        raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    return _MODELS[name](n_features=n_features, n_classes=n_classes, seq_len=seq_len, **kwargs)
