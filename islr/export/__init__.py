"""Torch models -> ONNX files that follow the model file's contract (:mod:`islr.modelfile`): the
classifier (with int8 quantisation and a cache of exports) and the segmenter, through one
export helper. Torch and ONNX load only when something is exported."""

from islr.export.classifier import (
    ExportResult,
    cached_onnx_bytes,
    embedding_dim_of,
    export_onnx,
    onnx_bytes_from_checkpoint,
    onnx_bytes_from_model,
    quantize_int8,
)
from islr.export.segmenter import export_segmenter

__all__ = [
    "ExportResult",
    "cached_onnx_bytes",
    "embedding_dim_of",
    "export_onnx",
    "export_segmenter",
    "onnx_bytes_from_checkpoint",
    "onnx_bytes_from_model",
    "quantize_int8",
]
