"""Exception types for user mistakes; the CLI prints them as one line instead of a traceback.

Only these are user errors: a bare ``KeyError``, ``FileNotFoundError``... is a bug and keeps its
traceback. Code that detects a user mistake raises one of these, with what to do about it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from islr.landmarks.cache import CacheError
from islr.landmarks.labels import LabelError
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


class VocabularyError(ValueError):
    """A change to a model's vocabulary of added signs that cannot be made (a name taken, a known
    sign renamed, a vocabulary file of another model)."""


class MissingExtraError(ImportError):
    """A feature needs an optional dependency group (``pip install "islr[EXTRA]"``) that is absent.

    Not in :data:`USER_ERRORS` on purpose: a missing extra stops the whole command (exit code 2),
    even where a bad input would only be skipped.
    """


# import name -> (what users call it, the pip extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("PyTorch", "train"),
    "onnx": ("the onnx package", "train"),
    "mediapipe": ("MediaPipe", "video"),
    "cv2": ("OpenCV", "video"),
}
NO_VIDEO_ON_313 = (
    "mediapipe 0.10.21, the last release with the solutions API, has no wheels for Python 3.13; "
    'use Python 3.11 or 3.12 with pip install "islr[video]"'
)


def missing_extra_message(module: str, what: str) -> str:
    """The one line saying that ``what`` needs ``module`` and which extra installs it."""
    name, extra = EXTRAS[module]
    if extra == "video" and sys.version_info >= (3, 13):
        return f"{what} needs {name}, which is not available on Python 3.13: {NO_VIDEO_ON_313}"
    return f'{what} needs {name}: pip install "islr[{extra}]"'


def require(module: str, what: str, hint: str = "", load: bool = True) -> ModuleType | None:
    """Import ``module`` (one of :data:`EXTRAS`) for ``what`` (e.g. ``"islr train"``), or raise
    :class:`MissingExtraError` naming the extra to install (``hint`` is appended). ``load=False``
    only checks that it is installed (for a parent process whose workers do the import)."""
    if module not in EXTRAS:
        raise ValueError(f"unknown optional module {module!r}; known: {', '.join(EXTRAS)}")
    try:
        if not load:
            if importlib.util.find_spec(module) is None:
                raise ModuleNotFoundError(f"No module named {module!r}", name=module)
            return None
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module and (e.name or "").split(".")[0] != module:
            # installed, but something it needs is not: say so instead of "install it"
            raise MissingExtraError(f"{what}: {module} is installed but cannot load ({e})") from e
        message = missing_extra_message(module, what)
        raise MissingExtraError(f"{message}; {hint}" if hint else message) from None
    except (ImportError, ValueError) as e:  # a broken install (ValueError: a None __spec__)
        raise MissingExtraError(f"{what}: {module} is installed but cannot load ({e})") from e


class ClusterError(RuntimeError):
    """Ray is not installed, or the Ray cluster named by ``--ray`` cannot be reached."""


USER_ERRORS: tuple[type[Exception], ...] = (
    CacheError,
    LabelError,
    LandmarkFileError,
    LayoutError,
    ConfigError,
    DatasetError,
    ModelError,
    VideoError,
    InputError,
    ClusterError,
    VocabularyError,
)
