"""Inference: one engine over a checkpoint or an ``.onnx`` file, the learned segmenter at run
time, and adding signs to a model (:mod:`islr.inference.enroll`). ONNX Runtime and torch load
only when a model is loaded."""

from islr.inference.engine import Engine
from islr.streaming import StreamConfig

__all__ = ["Engine", "StreamConfig"]
