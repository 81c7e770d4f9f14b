"""The segmenter file's contract: its graph's input and output, its metadata, and where it lies
beside a classifier (read and written here, without torch).

The graph takes ``landmarks`` float32 ``[batch, frames, n_points, n_coords]`` (NaN = not
detected; the frames of a stream in the segmenter's layout, aspect-corrected like the
classifier's) and returns ``tags`` ``[batch, frames, 3]``: the O/B/I probabilities, row ``i``
tagging frame ``i - lookahead`` (:mod:`islr.models.segmenter`). Its metadata (ONNX
``metadata_props`` key ``"islr_segmenter"``, JSON): layout, n_points, n_coords, window,
lookahead, tags, the architecture, what it was trained on, and ``"stream"``: the stream settings
it brings (``"segmenter": "learned"`` and the decoder's thresholds), which go over the
classifier's own (:func:`islr.inference.segmenter.merged_stream`). A classifier ``NAME.onnx`` finds its segmenter at
``NAME.segmenter.onnx`` (:func:`segmenter_paths`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from islr import __version__
from islr.errors import ModelError
from islr.landmarks import Layout, atomic_write_bytes, get_layout
from islr.modelfile.metadata import INPUT_NAME
from islr.streaming.config import StreamConfig

SEGMENTER_KEY = "islr_segmenter"
TAGS_NAME = "tags"  # the output; the input is INPUT_NAME, as the classifier's
SEGMENTER_SUFFIX = ".segmenter.onnx"
# The decoder's settings a segmenter ships with (measured on INCLUDE-50 val streams: README).
DEFAULT_DECODER = {
    "segmenter": "learned",
    "sign_threshold": 0.5,
    "begin_threshold": 0.5,
    "out_seconds": 0.1,
    "context_seconds": 0.5,
}


def segmenter_metadata(config: Any, trained_on: str, stream: dict[str, Any] | None) -> dict:
    """The ``"islr_segmenter"`` metadata of a :class:`~islr.models.segmenter.SegmenterConfig`."""
    layout = get_layout(config.layout)
    return {
        "kind": "sign-segmenter",
        "tags": ["O", "B", "I"],
        "layout": layout.to_dict(),
        "n_points": layout.n_points,
        "n_coords": int(config.n_coords),
        "window": int(config.window),
        "lookahead": int(config.lookahead),
        "model": config.to_dict(),
        "trained_on": trained_on,
        "input": INPUT_NAME,
        "output": TAGS_NAME,
        "version": __version__,
        "stream": StreamConfig.from_dict({**DEFAULT_DECODER, **(stream or {})}).to_dict(),
    }


def segmenter_settings(text: str | None, where: str) -> dict[str, Any]:
    """Parse and check a segmenter's ``"islr_segmenter"`` JSON; :class:`ModelError` when absent
    or broken."""
    if text is None:
        raise ModelError(f"{where}: not a sign segmenter (no {SEGMENTER_KEY!r} metadata)")
    try:
        meta = json.loads(text)
        Layout.from_dict(meta["layout"])
        for key in ("window", "lookahead", "n_coords"):
            int(meta[key])
        StreamConfig.from_dict(meta.get("stream") or {})
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{where}: the segmenter's metadata is invalid ({e})") from e
    return meta


def with_stream_settings(path: str | Path, stream: dict[str, Any]) -> None:
    """Rewrite a segmenter file's ``"stream"`` settings (e.g. tuned decoder thresholds)."""
    import onnx

    proto = onnx.load(str(path))
    props = {p.key: p for p in proto.metadata_props}
    if SEGMENTER_KEY not in props:
        raise ModelError(f"{path}: not a segmenter (no {SEGMENTER_KEY!r} metadata)")
    meta = json.loads(props[SEGMENTER_KEY].value)
    meta["stream"] = StreamConfig.from_dict({**meta["stream"], **stream}).to_dict()
    props[SEGMENTER_KEY].value = json.dumps(meta)
    atomic_write_bytes(Path(path), proto.SerializeToString())


def segmenter_paths(model: str | Path) -> list[Path]:
    """Where the segmenter of classifier ``model`` may live, first match wins: ``NAME.onnx`` or
    ``NAME.pt`` -> ``NAME.segmenter.onnx``, then ``segmenter.onnx`` in its folder; a run
    folder -> its ``segmenter.onnx``."""
    path = Path(model)
    if path.is_dir():
        return [path / "segmenter.onnx"]
    return [path.with_name(path.stem + SEGMENTER_SUFFIX), path.with_name("segmenter.onnx")]
