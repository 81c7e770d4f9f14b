"""Sign classifiers: one file per architecture, registered by name.

Importing this package registers every built-in model (and imports torch).
"""

from islr.models import conv_transformer, seed_transformer  # noqa: F401  (register models)
from islr.models.classifier import ModelConfig, SignClassifier, count_parameters
from islr.models.registry import create_model, model_names, register_model

__all__ = [
    "ModelConfig",
    "SignClassifier",
    "count_parameters",
    "create_model",
    "model_names",
    "register_model",
]
