"""The input pipeline shared by training and inference, and the augmentations.

numpy side (before the model): :func:`prepare_model_input` (layout, aspect, resampling) and
:mod:`augment`. torch side (inside the model, exported to ONNX): :class:`LandmarkPreprocessor`
(import it from ``islr.features.preprocess``; kept out of here so numpy users skip torch).
"""

from islr.features.augment import TRANSFORMS, Compose, augment_sequence, mirror, mixup
from islr.features.config import UPPER_BODY_POSE, AugmentConfig, FeatureConfig
from islr.features.model_input import (
    aspect_correct,
    aspect_corrected,
    prepare_model_input,
    resample,
    resample_indices,
    to_layout,
)

__all__ = [
    "TRANSFORMS",
    "UPPER_BODY_POSE",
    "AugmentConfig",
    "Compose",
    "FeatureConfig",
    "aspect_corrected",
    "aspect_correct",
    "augment_sequence",
    "mirror",
    "mixup",
    "prepare_model_input",
    "resample",
    "resample_indices",
    "to_layout",
]
