"""Exception types for user mistakes; the CLI prints them as one line instead of a traceback.

Only these are user errors: a bare ``KeyError``, ``FileNotFoundError``... is a bug and keeps its
traceback. Code that detects a user mistake raises one of these, with what to do about it.
"""

from __future__ import annotations

from islr.landmarks.cache import CacheError
from islr.landmarks.layouts import LayoutError
from islr.landmarks.sequence import LandmarkFileError


class ConfigError(ValueError):
    """A config file or override is invalid."""


class DatasetError(ValueError):
    """Labels, split lists or imported data are inconsistent or empty."""


class ModelError(ValueError):
    """A checkpoint or ONNX model is missing, corrupt, or does not fit the data."""


class VideoError(ValueError):
    """A video cannot be read or holds no signer."""


class UnknownModelError(ConfigError):
    """A model name that no registered architecture has."""


class InputError(ValueError):
    """An input for prediction is missing, or its landmarks have the wrong shape or hold Inf/NaN
    where not allowed."""


USER_ERRORS: tuple[type[Exception], ...] = (
    CacheError,
    LandmarkFileError,
    LayoutError,
    ConfigError,
    DatasetError,
    ModelError,
    VideoError,
    InputError,
)
