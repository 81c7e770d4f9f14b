"""The landmark data model: sequences, named layouts and the on-disk cache."""

from islr.landmarks.cache import (
    CacheError,
    CacheWriter,
    LandmarkCache,
    ManifestEntry,
    load_cache_arrays,
    sample_path_for,
)
from islr.landmarks.layouts import (
    HANDS_POSE75,
    HOLISTIC136,
    Layout,
    LayoutError,
    LayoutPart,
    convert,
    get_layout,
    layout_names,
    register_layout,
)
from islr.landmarks.sequence import (
    LandmarkFileError,
    LandmarkSequence,
    atomic_write_bytes,
    load_sequence,
    save_sequence,
    sequence_to_bytes,
)

__all__ = [
    "CacheError",
    "CacheWriter",
    "HANDS_POSE75",
    "HOLISTIC136",
    "LandmarkCache",
    "LandmarkFileError",
    "LandmarkSequence",
    "Layout",
    "LayoutError",
    "LayoutPart",
    "ManifestEntry",
    "atomic_write_bytes",
    "convert",
    "get_layout",
    "layout_names",
    "load_cache_arrays",
    "load_sequence",
    "register_layout",
    "sample_path_for",
    "save_sequence",
    "sequence_to_bytes",
]
