"""What every classifier receives: raw landmarks in its layout, in width units, ``seq_len`` frames.

The same functions run at training time (before augmentation) and at inference time (Python
engine, server); the browser page implements the same three steps in JS. Normalisation and
feature building happen inside the model (:mod:`islr.features.preprocess`), so an exported ONNX
file carries them.
"""

from __future__ import annotations

import numpy as np

from islr.landmarks import LandmarkSequence, Layout, convert, get_layout


def resample_indices(n_frames: int, seq_len: int) -> np.ndarray:
    """Frame index for each of ``seq_len`` outputs: nearest, centre-aligned.

    Output frame ``i`` is input frame ``floor((i + 0.5) * n_frames / seq_len)``; frames repeat
    when the input is shorter than ``seq_len``.
    """
    if n_frames < 1:
        raise ValueError("cannot resample an empty sequence")
    idx = np.floor((np.arange(seq_len) + 0.5) * n_frames / seq_len).astype(np.int64)
    return np.minimum(idx, n_frames - 1)


def resample(data: np.ndarray, seq_len: int) -> np.ndarray:
    """``(T, ...)`` -> ``(seq_len, ...)`` by :func:`resample_indices`."""
    return data[resample_indices(data.shape[0], seq_len)]


def aspect_corrected(seq: LandmarkSequence) -> np.ndarray:
    """Landmarks with y (and z) in units of image width, so shapes keep their proportions.

    MediaPipe gives x in units of image width and y in units of image height. Without the image
    size (``extra['image_width']`` / ``['image_height']``) the data is returned unchanged.
    """
    return aspect_correct(seq.data, seq.extra.get("image_width"), seq.extra.get("image_height"))


def aspect_correct(data: np.ndarray, width: float | None, height: float | None) -> np.ndarray:
    """``data`` with y (and z) in units of image width; unchanged without the image size."""
    if not width or not height:
        return data
    out = data.copy()
    out[..., 1] *= float(height) / float(width)
    return out


def to_layout(
    data: np.ndarray, data_layout: str | Layout, model_layout: str | Layout, n_coords: int
) -> np.ndarray:
    """Gather the model's points (by MediaPipe component and index) and coordinates."""
    source, target = get_layout(data_layout), get_layout(model_layout)
    if source.parts != target.parts:
        data = convert(data, source, target)
    if data.shape[2] < n_coords:
        pad = np.full((*data.shape[:2], n_coords - data.shape[2]), np.nan, dtype=np.float32)
        data = np.concatenate([data, pad], axis=2)
    return np.ascontiguousarray(data[..., :n_coords], dtype=np.float32)


def prepare_model_input(
    seq: LandmarkSequence, layout: str | Layout, seq_len: int | None, n_coords: int = 3
) -> np.ndarray:
    """Layout mapping + aspect correction + (if ``seq_len``) resampling: ``(L, N, C)`` float32."""
    data = to_layout(aspect_corrected(seq), seq.layout, layout, n_coords)
    return resample(data, seq_len) if seq_len else data
