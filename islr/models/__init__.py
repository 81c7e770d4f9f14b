"""Sign classifiers: one file per architecture, registered by name.

The registry imports every module of this package on first use, which registers the models
(see :mod:`islr.models.registry`). Importing this package imports torch.
"""

from islr.models.checkpoint import (
    ModelSpec,
    ensemble_checkpoints,
    load_classifier,
    read_checkpoint,
    save_checkpoint,
)
from islr.models.classifier import ModelConfig, SignClassifier, count_parameters
from islr.models.ensemble import SignEnsemble
from islr.models.registry import (
    RegisteredModel,
    create_model,
    model_names,
    register_model,
    registered_model,
)

__all__ = [
    "ModelConfig",
    "ModelSpec",
    "RegisteredModel",
    "SignClassifier",
    "SignEnsemble",
    "count_parameters",
    "create_model",
    "ensemble_checkpoints",
    "load_classifier",
    "model_names",
    "read_checkpoint",
    "register_model",
    "registered_model",
    "save_checkpoint",
]
