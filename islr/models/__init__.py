"""Sign classifiers: one file per architecture, registered by name.

Importing this package registers every built-in model (and imports torch).
"""

from islr.models import conv_transformer, seed_transformer  # noqa: F401  (register models)
from islr.models.checkpoint import (
    ModelSpec,
    ensemble_checkpoints,
    load_classifier,
    read_checkpoint,
    save_checkpoint,
)
from islr.models.classifier import ModelConfig, SignClassifier, count_parameters
from islr.models.ensemble import SignEnsemble
from islr.models.registry import create_model, model_names, register_model

__all__ = [
    "ModelConfig",
    "ModelSpec",
    "SignClassifier",
    "SignEnsemble",
    "count_parameters",
    "create_model",
    "ensemble_checkpoints",
    "load_classifier",
    "model_names",
    "read_checkpoint",
    "register_model",
    "save_checkpoint",
]
