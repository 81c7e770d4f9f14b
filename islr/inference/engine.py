"""One inference engine over a checkpoint (PyTorch) or an exported ``.onnx`` file (ONNX Runtime).

Both backends take the same input, prepared by the same function the training uses
(:func:`islr.features.prepare_model_input`: layout mapping, aspect, resampling), and return the
same logits, so a clip predicts the same whatever runs it::

    engine = Engine.load("runs/include50")          # or "model.onnx"
    engine.predict(sequence, top_k=5)               # [("bank", 0.93), ("loud", 0.02), ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from islr.errors import InputError, ModelError
from islr.features import prepare_model_input
from islr.features.model_input import aspect_correct, resample, to_layout
from islr.landmarks import LandmarkSequence, Layout, LayoutError

PREDICT_CHUNK = 256  # sequences per forward pass in predict_batch (bounds memory)


class _Backend(Protocol):
    kind: str

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


class _TorchBackend:
    kind = "torch"

    def __init__(self, path: Path, threads: int | None):
        from islr.errors import require

        if not path.exists():
            raise ModelError(f"{path}: no such checkpoint (train one with `islr train`)")
        torch = require(
            "torch", f"the PyTorch checkpoint {path}", "an exported .onnx model runs without it"
        )
        from islr.models import load_classifier

        self.torch = torch
        self.threads = threads  # set around each call: PyTorch's thread count is process-wide
        self.model, self.spec = load_classifier(path)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        from islr.models.threads import torch_threads

        with torch_threads(self.threads), self.torch.inference_mode():
            return self.model(self.torch.from_numpy(batch)).numpy()


class _OnnxBackend:
    kind = "onnx"

    def __init__(self, model: Path | bytes, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            where = "the ONNX model" if isinstance(model, bytes) else str(model)
            raise ModelError(f"{where}: ONNX Runtime cannot load it ({e})") from e
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != ["landmarks"]:
            raise ModelError(f"expected one ONNX input named 'landmarks', the model has {inputs}")
        self.output = self.session.get_outputs()[0].name

    def metadata_text(self) -> str | None:
        return self.session.get_modelmeta().custom_metadata_map.get("islr")

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output], {"landmarks": batch})[0]


class Engine:
    """Predicts signs from landmark sequences with a checkpoint or an ONNX model.

    The engine holds the model's layout as the model describes it (``model_layout``), without
    registering it: two models whose layouts share a name but not their points live side by side.
    """

    def __init__(self, backend: _Backend, metadata: dict[str, Any], source: str):
        self._backend = backend
        self.metadata = metadata
        self.source = source
        self.labels: list[str] = list(metadata["labels"])
        try:
            self.model_layout: Layout = Layout.from_dict(metadata["layout"])
        except (LayoutError, TypeError) as e:
            raise ModelError(f"{source}: the model's layout metadata is invalid ({e})") from e
        self.layout: str = self.model_layout.name
        self.n_points: int = int(metadata["n_points"])
        self.n_coords: int = int(metadata["n_coords"])
        self.seq_len: int = int(metadata["seq_len"])
        from islr.inference.export import stream_config

        # the streaming segmenter's settings for this model (defaults for an older export)
        self.stream = stream_config(metadata, source)
        self.segmenter: Any = None  # the learned segmenter beside the model (use_segmenter)

    def use_segmenter(self, segmenter: Any) -> None:
        """Segment streams with ``segmenter`` (a :class:`~islr.inference.segmenter.
        SegmenterModel`, or None for none): its stream settings go over the model's."""
        from islr.inference.segmenter import merged_stream

        self.segmenter = segmenter
        self.stream = merged_stream(self.stream, segmenter)

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> Engine:
        """A checkpoint (RUN_DIR or ``.pt``) runs in PyTorch; an ``.onnx`` file in ONNX Runtime;
        a shipped model's name (``include50``) is its ``.onnx`` file."""
        from islr.pretrained import resolve_model

        path = resolve_model(path)
        if path.suffix.lower() == ".onnx":
            if not path.is_file():
                raise ModelError(f"{path}: no such ONNX model (make one with `islr export`)")
            engine = cls.from_onnx_bytes(path.read_bytes(), threads, source=str(path))
        else:
            from islr.inference.export import model_metadata

            backend = _TorchBackend(path, threads)
            engine = cls(backend, model_metadata(backend.spec), str(path))
        from islr.inference.segmenter import find_segmenter

        # a learned segmenter shipped beside the model (NAME.segmenter.onnx) segments its streams
        engine.use_segmenter(find_segmenter(path, engine.model_layout))
        return engine

    @classmethod
    def from_onnx_bytes(
        cls, model: bytes, threads: int | None = None, source: str = "<onnx bytes>"
    ) -> Engine:
        """An engine over ONNX model bytes (e.g. a model exported in memory)."""
        from islr.inference.export import parse_metadata

        backend = _OnnxBackend(model, threads)
        meta = parse_metadata(backend.metadata_text(), source)
        return cls(backend, meta, source)

    @property
    def backend(self) -> str:
        """``"torch"`` or ``"onnx"``."""
        return self._backend.kind

    def prepare(
        self, item: LandmarkSequence | np.ndarray, image_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """One model input ``(seq_len, n_points, n_coords)`` float32 from a sequence or array.

        A :class:`LandmarkSequence` may be in any layout (mapped by MediaPipe point) and carries
        its image size for the aspect correction. A bare array must be ``(T, n_points, C)`` in the
        model's layout, C = 2 or 3, in MediaPipe's units; ``image_size`` (width, height) gives
        its aspect correction.
        """
        if isinstance(item, LandmarkSequence):
            if item.n_frames == 0:
                raise InputError("the sequence has no frames")
            return prepare_model_input(item, self.model_layout, self.seq_len, self.n_coords)
        data = aspect_correct(self._checked_array(item), *(image_size or (None, None)))
        data = to_layout(data, self.model_layout, self.model_layout, self.n_coords)
        return resample(data, self.seq_len)

    def _checked_array(self, array: Any) -> np.ndarray:
        try:
            data = np.asarray(array, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise InputError(f"landmarks must be numbers (use NaN for missing points): {e}") from e
        expected = f"(frames, {self.n_points}, {self.n_coords})"
        if data.ndim != 3:
            raise InputError(
                f"landmarks must be a 3-D array {expected} in layout {self.layout!r}, "
                f"got shape {data.shape}"
            )
        t, n, c = data.shape
        if t == 0:
            raise InputError("the sequence has no frames")
        if n != self.n_points or c not in (2, 3):
            raise InputError(
                f"landmarks have shape {data.shape}; the model takes {expected} "
                f"(layout {self.layout!r}; 2 or 3 coordinates)"
            )
        if np.isinf(data).any():
            raise InputError("landmarks contain Inf; use NaN for points that were not detected")
        return data

    def logits_batch(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits of prepared inputs ``(B, seq_len, n_points, n_coords)``."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        expected = (self.seq_len, self.n_points, self.n_coords)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise InputError(f"a prepared batch must be (B, {expected}), got {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        chunks = [
            self._backend.logits(batch[i : i + PREDICT_CHUNK])
            for i in range(0, len(batch), PREDICT_CHUNK)
        ]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def predict_prepared(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities of prepared inputs ``(B, seq_len, n_points, n_coords)``."""
        return softmax(self.logits_batch(batch))

    def predict_batch(self, items: list[LandmarkSequence | np.ndarray]) -> np.ndarray:
        """Class probabilities ``(B, n_classes)`` for a list of sequences or arrays."""
        if not items:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        batch = np.stack([self.prepare(item) for item in items])
        return self.predict_prepared(batch)

    def predict(
        self, item: LandmarkSequence | np.ndarray, top_k: int = 5
    ) -> list[tuple[str, float]]:
        """The ``top_k`` most probable signs, best first, as ``(label, probability)``."""
        return self.top(self.predict_batch([item])[0], top_k)

    def top(self, probs: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
        """``(label, probability)`` of the ``top_k`` largest entries of ``probs``."""
        return top_labels(probs, self.labels, top_k)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary: the metadata plus which backend runs it."""
        return {
            **self.metadata,
            "layout": self.model_layout.to_dict(),
            "stream": self.stream.to_dict(),
            "backend": self.backend,
            "source": self.source,
            "n_classes": len(self.labels),
        }


def top_labels(probs: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """``(label, probability)`` of the ``k`` largest entries of ``probs``, best first (ties in
    label order)."""
    if k < 1:
        raise InputError(f"top_k must be at least 1, got {k}")
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
