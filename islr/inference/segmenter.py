"""The learned sign segmenter at run time: its ``.onnx`` file in ONNX Runtime, found beside a
classifier, and the stream settings it brings (the file's contract: :mod:`islr.modelfile`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from islr.errors import ModelError
from islr.features.model_input import to_layout
from islr.landmarks import Layout, get_layout
from islr.modelfile import (
    DEFAULT_DECODER,
    INPUT_NAME,
    SEGMENTER_KEY,
    TAGS_NAME,
    segmenter_paths,
    segmenter_settings,
)
from islr.streaming import StreamConfig


class SegmenterModel:
    """A segmenter ``.onnx`` in ONNX Runtime: frames (in ``frame_layout``) -> tag probabilities."""

    def __init__(self, model: bytes, source: str, frame_layout: str | Layout | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelError(f"{source}: ONNX Runtime cannot load it ({e})") from e
        text = self.session.get_modelmeta().custom_metadata_map.get(SEGMENTER_KEY)
        self.metadata: dict[str, Any] = segmenter_settings(text, source)
        self.layout = Layout.from_dict(self.metadata["layout"])
        self.window = int(self.metadata["window"])
        self.lookahead = int(self.metadata["lookahead"])
        self.n_coords = int(self.metadata["n_coords"])
        self.stream = dict(self.metadata.get("stream") or {})
        self.source = source
        self.model_bytes = model
        # the layout of the frames it is given (the classifier's), mapped to its own by point
        self.frame_layout = self.layout if frame_layout is None else get_layout(frame_layout)

    @classmethod
    def load(cls, path: str | Path, frame_layout: str | Layout | None = None) -> SegmenterModel:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no such segmenter (train one with `islr train-segmenter`)")
        return cls(path.read_bytes(), str(path), frame_layout)

    def tag_stream(self, frames: np.ndarray) -> np.ndarray:
        """Tag probabilities ``(T, 3)`` of a whole stream ``(T, N, C)`` in ``frame_layout``."""
        data = to_layout(
            np.asarray(frames, dtype=np.float32), self.frame_layout, self.layout, self.n_coords
        )
        return self.session.run([TAGS_NAME], {INPUT_NAME: data[None]})[0][0]

    def tag_window(self, frames: np.ndarray) -> np.ndarray:
        """The same for the last :attr:`window` frames of a live stream."""
        return self.tag_stream(frames)


def find_segmenter(model: str | Path, frame_layout: str | Layout) -> SegmenterModel | None:
    """The segmenter beside classifier ``model``, or None when there is none (or no ONNX
    Runtime to run it)."""
    path = next((p for p in segmenter_paths(model) if p.is_file()), None)
    if path is None:
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    return SegmenterModel.load(path, frame_layout)


def merged_stream(classifier: StreamConfig, segmenter: SegmenterModel | None) -> StreamConfig:
    """The classifier's stream settings with the segmenter's on top (its decoder settings)."""
    if segmenter is None:
        return classifier
    # only the decoder's: the rest (the unknown threshold...) belongs to the classifier
    return replace(
        classifier, **{k: v for k, v in segmenter.stream.items() if k in DEFAULT_DECODER}
    )
