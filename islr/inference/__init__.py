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
from islr.inference.streaming import SegmentTracker, StreamConfig, StreamSegmenter

__all__ = [
    "Engine",
    "ExportResult",
    "SegmentTracker",
    "StreamConfig",
    "StreamSegmenter",
    "export_onnx",
    "model_metadata",
    "onnx_bytes_from_checkpoint",
    "read_onnx_metadata",
    "softmax",
    "top_labels",
]
