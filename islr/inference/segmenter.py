"""The learned sign segmenter as ONNX: export, loading, and finding it beside a classifier.

The graph takes ``landmarks`` float32 ``[batch, frames, n_points, n_coords]`` (NaN = not
detected; the frames of a stream in the segmenter's layout, aspect-corrected like the
classifier's) and returns ``tags`` ``[batch, frames, 3]``: the O/B/I probabilities, row ``i``
tagging frame ``i - lookahead`` (:mod:`islr.models.segmenter`). Its metadata (ONNX
``metadata_props`` key ``"islr_segmenter"``, JSON): layout, n_points, n_coords, window,
lookahead, tags, the architecture, what it was trained on, and ``"stream"``: the stream settings
it brings (``"segmenter": "learned"`` and the decoder's thresholds), which go over the
classifier's own (:func:`merged_stream`). A classifier ``NAME.onnx`` finds its segmenter at
``NAME.segmenter.onnx`` (:func:`segmenter_paths`).
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from islr import __version__
from islr.errors import ModelError
from islr.features.model_input import to_layout
from islr.inference.streaming import StreamConfig
from islr.landmarks import Layout, atomic_write_bytes, get_layout

SEGMENTER_KEY = "islr_segmenter"
INPUT_NAME = "landmarks"
OUTPUT_NAME = "tags"
SUFFIX = ".segmenter.onnx"
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
        "output": OUTPUT_NAME,
        "version": __version__,
        "stream": StreamConfig.from_dict({**DEFAULT_DECODER, **(stream or {})}).to_dict(),
    }


def export_segmenter(
    model: Any, out: str | Path, trained_on: str = "", stream: dict[str, Any] | None = None
) -> Path:
    """Write an eval-mode :class:`~islr.models.segmenter.SignSegmenter` as ONNX (atomically)."""
    import onnx
    import torch

    from islr.inference.export import OPSET
    from islr.models.segmenter import SegmenterProbs

    cfg = model.config
    graph = SegmenterProbs(model.eval())
    n_points = get_layout(cfg.layout).n_points
    example = torch.rand(1, cfg.window, n_points, cfg.n_coords)
    example[0, :5, :21] = float("nan")
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            graph,
            (example,),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 1: "frames"},
                OUTPUT_NAME: {0: "batch", 1: "frames"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_model_from_string(buf.getvalue())
    meta = segmenter_metadata(cfg, trained_on, stream)
    proto.metadata_props.add(key=SEGMENTER_KEY, value=json.dumps(meta))
    proto.producer_name = "islr"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    out = Path(out)
    atomic_write_bytes(out, proto.SerializeToString())
    return out


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
        if text is None:
            raise ModelError(f"{source}: not a sign segmenter (no {SEGMENTER_KEY!r} metadata)")
        try:
            self.metadata: dict[str, Any] = json.loads(text)
            self.layout = Layout.from_dict(self.metadata["layout"])
            self.window = int(self.metadata["window"])
            self.lookahead = int(self.metadata["lookahead"])
            self.n_coords = int(self.metadata["n_coords"])
            self.stream = dict(self.metadata.get("stream") or {})
            StreamConfig.from_dict(self.stream)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{source}: the segmenter's metadata is invalid ({e})") from e
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
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: data[None]})[0][0]

    def tag_window(self, frames: np.ndarray) -> np.ndarray:
        """The same for the last :attr:`window` frames of a live stream."""
        return self.tag_stream(frames)


def segmenter_paths(model: str | Path) -> list[Path]:
    """Where the segmenter of classifier ``model`` may live, first match wins: ``NAME.onnx`` or
    ``NAME.pt`` -> ``NAME.segmenter.onnx``, then ``segmenter.onnx`` in its folder; a run
    folder -> its ``segmenter.onnx``."""
    path = Path(model)
    if path.is_dir():
        return [path / "segmenter.onnx"]
    return [path.with_name(path.stem + SUFFIX), path.with_name("segmenter.onnx")]


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
