"""Inference: one engine over a checkpoint or an ``.onnx`` file, ONNX export, and streaming
segmentation. Torch and ONNX Runtime load only when a model is loaded or exported."""

from islr.inference.engine import Engine, softmax, top_labels
from islr.inference.export import (
    ExportResult,
    export_onnx,
    model_metadata,
    onnx_bytes_from_checkpoint,
    read_onnx_metadata,
)
from islr.inference.streaming import (
    LearnedTracker,
    SegmentTracker,
    StreamConfig,
    StreamSegmenter,
    TagDecoder,
)

__all__ = [
    "Engine",
    "ExportResult",
    "LearnedTracker",
    "SegmentTracker",
    "StreamConfig",
    "StreamSegmenter",
    "TagDecoder",
    "export_onnx",
    "model_metadata",
    "onnx_bytes_from_checkpoint",
    "read_onnx_metadata",
    "softmax",
    "top_labels",
]
