"""Exception types for user mistakes; the CLI prints them as one line instead of a traceback."""

from __future__ import annotations

from islr.landmarks.cache import CacheError
from islr.landmarks.sequence import LandmarkFileError


class ConfigError(ValueError):
    """A config file or override is invalid."""


class DatasetError(ValueError):
    """Labels, split lists or imported data are inconsistent or empty."""


class ModelError(ValueError):
    """A checkpoint or ONNX model is missing, corrupt, or does not fit the data."""


class VideoError(ValueError):
    """A video cannot be read or holds no signer."""


class InputError(ValueError):
    """Landmarks given for prediction have the wrong shape or hold Inf/NaN where not allowed."""


class ClusterError(RuntimeError):
    """Ray is not installed, or the Ray cluster named by ``--ray`` cannot be reached."""


USER_ERRORS: tuple[type[Exception], ...] = (
    CacheError,
    LandmarkFileError,
    ConfigError,
    DatasetError,
    ModelError,
    VideoError,
    InputError,
    ClusterError,
    FileNotFoundError,
    KeyError,
)
