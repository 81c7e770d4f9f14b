"""Arrays as compact JSON, the form they take in a model file's metadata and a vocabulary file."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from islr.errors import ModelError


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A float array as compact JSON (float16, base64)."""
    a16 = np.ascontiguousarray(a, dtype="<f2")
    return {"dtype": "float16", "shape": list(a16.shape), "base64": base64.b64encode(a16).decode()}


def decode_array(d: Any) -> np.ndarray:
    try:
        raw = base64.b64decode(d["base64"])
        return np.frombuffer(raw, dtype="<f2").reshape(d["shape"]).astype(np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known-sign prototypes are unreadable ({e})") from None


def encode_int8_rows(a: np.ndarray) -> dict[str, Any]:
    """A float matrix as compact JSON: int8 rows, each with its float16 scale (half the size of
    :func:`encode_array`; the error, 1/254 of a row's largest value, is far below what matters
    for refitting a head)."""
    a = np.asarray(a, dtype=np.float32)
    scale = np.maximum(np.abs(a).max(axis=1), 1e-12) / 127
    scale = scale.astype("<f2").astype(np.float32)
    q = np.clip(np.round(a / np.maximum(scale, 1e-12)[:, None]), -127, 127).astype(np.int8)
    return {
        "dtype": "int8-rows",
        "shape": list(a.shape),
        "scale": encode_array(scale),
        "base64": base64.b64encode(np.ascontiguousarray(q)).decode(),
    }


def decode_int8_rows(d: Any) -> np.ndarray:
    try:
        q = np.frombuffer(base64.b64decode(d["base64"]), dtype=np.int8).reshape(d["shape"])
        scale = decode_array(d["scale"])
        return q.astype(np.float32) * scale[:, None]
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"the model's known-sign embeddings are unreadable ({e})") from None
