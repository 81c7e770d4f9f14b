"""Models register by name; ``create_model(name, ...)`` builds one (the timm way, kept small).

A backbone is registered with the decorator on its class or builder function, together with a
tiny configuration for the tests. Besides ``forward(features) -> logits`` it has
``logits_and_embedding(features) -> (logits, (B, D))``: the same logits and a sign embedding
(pooled features that carry over to signs the model was not trained on; the classifier
normalises them). The tests are parametrised over every registered model.
Every module of this package is imported on first use of the registry, so a new architecture is
one new file: no import list to update.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

ModelBuilder = Callable[..., nn.Module]


@dataclass(frozen=True)
class RegisteredModel:
    """A backbone by name: ``builder(n_features, n_classes, [seq_len,] **kwargs)``."""

    name: str
    builder: ModelBuilder
    test_kwargs: dict[str, Any] = field(default_factory=dict)  # a tiny model, for the tests

    @property
    def uses_seq_len(self) -> bool:
        """Whether the builder takes ``seq_len`` (e.g. for learned positions)."""
        return "seq_len" in inspect.signature(self.builder).parameters

    @property
    def default_kwargs(self) -> dict[str, Any]:
        """The builder's keyword arguments and their defaults."""
        skip = {"n_features", "n_classes", "seq_len"}
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.name not in skip and p.default is not inspect.Parameter.empty
        }


_MODELS: dict[str, RegisteredModel] = {}


def register_model(
    name: str, test_kwargs: dict[str, Any] | None = None
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering a backbone class or builder under ``name``; ``test_kwargs`` make a
    tiny instance for the tests (seconds to build, train a step and export)."""

    def wrap(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = RegisteredModel(name, builder, dict(test_kwargs or {}))
        return builder

    return wrap


def _import_model_modules() -> None:
    """Import every module of :mod:`islr.models`, which registers the models they define."""
    package = importlib.import_module("islr.models")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def registered_model(name: str) -> RegisteredModel:
    """The registry entry of ``name``; :class:`~islr.errors.UnknownModelError` if none."""
    _import_model_modules()
    if name not in _MODELS:
        from islr.errors import UnknownModelError

        raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    return _MODELS[name]


def model_names() -> list[str]:
    """Names of every registered model, sorted."""
    _import_model_modules()
    return sorted(_MODELS)


def create_model(
    name: str, n_features: int, n_classes: int, seq_len: int, **kwargs: object
) -> nn.Module:
    """The backbone ``name``: ``(B, seq_len, n_features)`` -> ``(B, n_classes)`` logits.

    ``seq_len`` is passed only to builders that take it.
    """
    entry = registered_model(name)
    if entry.uses_seq_len:
        kwargs["seq_len"] = seq_len
    return entry.builder(n_features=n_features, n_classes=n_classes, **kwargs)
