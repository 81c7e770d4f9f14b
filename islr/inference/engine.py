"""One inference engine over a checkpoint (PyTorch) or an exported ``.onnx`` file (ONNX Runtime).

Both backends take the same input, prepared by the same function the training uses
(:func:`islr.features.prepare_model_input`: layout mapping, aspect, resampling), and return the
same logits and sign embeddings, so a clip predicts the same whatever runs it::

    engine = Engine.load("runs/include50")          # or "model.onnx"
    engine.predict(sequence, top_k=5)               # [("bank", 0.93), ("loud", 0.02), ...]

A model's vocabulary of added signs (:mod:`islr.vocabulary`, the file beside the model)
is loaded with it: ``engine.labels`` are the known signs then the added ones, and every prediction
scores both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from islr.errors import InputError, ModelError, VocabularyError, require
from islr.export import embedding_dim_of
from islr.features import prepare_model_input
from islr.features.model_input import aspect_correct, resample, to_layout
from islr.inference.segmenter import SegmenterModel, find_segmenter, merged_stream
from islr.landmarks import LandmarkSequence, Layout, LayoutError
from islr.modelfile import (
    EMBEDDING_NAME,
    INPUT_NAME,
    METADATA_KEY,
    EmbeddingReference,
    augment_config,
    embedding_reference,
    model_metadata,
    parse_metadata,
    recipe_augment,
    reference_from_metadata,
    stream_config,
)
from islr.pretrained import resolve_model
from islr.streaming import softmax, top_labels
from islr.vocabulary import (
    Vocabulary,
    fit_head,
    load_vocabulary,
    vocabulary_log_scores,
    vocabulary_path,
)

PREDICT_CHUNK = 256  # sequences per forward pass in predict_batch (bounds memory)


class _Backend(Protocol):
    kind: str

    def logits(self, batch: np.ndarray) -> np.ndarray: ...

    def logits_and_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class _TorchBackend:
    kind = "torch"

    def __init__(self, path: Path, threads: int | None, device: str | None = "cpu"):
        if not path.exists():
            raise ModelError(f"{path}: no such checkpoint (train one with `islr train`)")
        torch = require(
            "torch", f"the PyTorch checkpoint {path}", "an exported .onnx model runs without it"
        )
        from islr.models import load_classifier  # (these import torch)
        from islr.models.device import resolve_device
        from islr.models.threads import torch_threads

        self.torch, self.torch_threads = torch, torch_threads
        self.threads = threads  # set around each call: PyTorch's thread count is process-wide
        self.device = resolve_device(device)
        self.model, self.spec = load_classifier(path)  # loaded on the CPU, whatever wrote it
        self.model.to(self.device)

    def _input(self, batch: np.ndarray):
        return self.torch.from_numpy(batch).to(self.device)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self.torch_threads(self.threads), self.torch.inference_mode():
            return self.model(self._input(batch)).cpu().numpy()

    def logits_and_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self.torch_threads(self.threads), self.torch.inference_mode():
            logits, embedding = self.model.logits_and_embedding(self._input(batch))
            return logits.cpu().numpy(), embedding.cpu().numpy()


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
        if inputs != [INPUT_NAME]:
            raise ModelError(
                f"expected one ONNX input named {INPUT_NAME!r}, the model has {inputs}"
            )
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = outputs[0]
        self.embedding_output = EMBEDDING_NAME if EMBEDDING_NAME in outputs else None
        # the model file's metadata_props
        self.properties: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output], {INPUT_NAME: batch})[0]

    def logits_and_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.embedding_output is None:
            raise ModelError(
                "this ONNX model has no 'embedding' output (exported by an older islr): "
                "export it again with `islr export` to add signs to it"
            )
        logits, embedding = self.session.run(
            [self.output, self.embedding_output], {INPUT_NAME: batch}
        )
        return logits, embedding


def require_landmarks(batch: np.ndarray, what: str = "the clip") -> None:
    """InputError unless some frame of a model input has a detected point: with nobody in view
    there is no sign to name (a stream calls such a segment ``unknown``)."""
    if np.isnan(batch).all():
        raise InputError(
            f"{what}: no landmarks in any frame (nobody was detected); nothing to classify"
        )


class Engine:
    """Predicts signs from landmark sequences with a checkpoint or an ONNX model.

    The engine holds the model's layout as the model describes it (``model_layout``), without
    registering it: two models whose layouts share a name but not their points live side by side.
    """

    def __init__(
        self,
        backend: _Backend,
        metadata: dict[str, Any],
        source: str,
        reference: EmbeddingReference | None = None,
    ):
        self._backend = backend
        self.metadata = metadata
        self.source = source
        self.known_labels: list[str] = list(metadata["labels"])
        embedding = metadata.get("embedding") or {}
        self.embedding_dim: int | None = int(embedding["dim"]) if "dim" in embedding else None
        # calibration and known prototypes (the metadata's calibration wins for an ONNX model)
        self.reference = reference or EmbeddingReference()
        self.vocabulary = Vocabulary(self.embedding_dim or 0)
        self.vocabulary_file: Path | None = None
        try:
            self.model_layout: Layout = Layout.from_dict(metadata["layout"])
        except (LayoutError, TypeError) as e:
            raise ModelError(f"{source}: the model's layout metadata is invalid ({e})") from e
        self.layout: str = self.model_layout.name
        self.n_points: int = int(metadata["n_points"])
        self.n_coords: int = int(metadata["n_coords"])
        self.seq_len: int = int(metadata["seq_len"])
        # the streaming segmenter's settings for this model (defaults for an older export)
        self.stream = stream_config(metadata, source)
        # the augmentations of its training recipe (the takes of a sign added to it get them)
        self.augment = augment_config(metadata, source)
        # the learned segmenter beside the model (use_segmenter)
        self.segmenter: SegmenterModel | None = None

    def use_segmenter(self, segmenter: SegmenterModel | None) -> None:
        """Segment streams with ``segmenter`` (None for none): its stream settings go over the
        model's."""
        self.segmenter = segmenter
        self.stream = merged_stream(self.stream, segmenter)

    @classmethod
    def load(
        cls,
        path: str | Path,
        threads: int | None = None,
        vocabulary: bool = True,
        device: str | None = "cpu",
    ) -> Engine:
        """A checkpoint (RUN_DIR or ``.pt``) runs in PyTorch on ``device`` (``auto``, ``cpu``,
        ``cuda[:N]``, ``mps``); an ``.onnx`` file in ONNX Runtime, on the CPU; a shipped model's
        name (``include50``) is its ``.onnx`` file. The vocabulary beside the model
        (``X.vocab.json``, see :func:`~islr.vocabulary.vocabulary_path`), if any, comes
        with it unless ``vocabulary`` is false."""
        ref, path = path, resolve_model(path)
        if path.suffix.lower() == ".onnx" and (device or "cpu") not in ("cpu", "auto"):
            raise ModelError(
                f"{path}: an ONNX model runs in ONNX Runtime on the CPU; --device {device} "
                "needs a .pt checkpoint"
            )
        if path.suffix.lower() == ".onnx":
            if not path.is_file():
                raise ModelError(f"{path}: no such ONNX model (make one with `islr export`)")
            engine = cls.from_onnx_bytes(path.read_bytes(), threads, source=str(path))
        else:
            backend = _TorchBackend(path, threads, device)
            dim = embedding_dim_of(backend.model, backend.spec)
            meta = model_metadata(backend.spec, embedding_dim=dim)
            engine = cls(backend, meta, str(path), embedding_reference(backend.spec))
            engine.augment = recipe_augment(backend.spec)
        # a learned segmenter shipped beside the model (NAME.segmenter.onnx) segments its streams
        engine.use_segmenter(find_segmenter(path, engine.model_layout))
        if vocabulary and engine.embedding_dim is not None:
            engine.use_vocabulary_file(vocabulary_path(ref))
        return engine

    @classmethod
    def from_onnx_bytes(
        cls, model: bytes, threads: int | None = None, source: str = "<onnx bytes>"
    ) -> Engine:
        """An engine over ONNX model bytes (e.g. a model exported in memory)."""
        backend = _OnnxBackend(model, threads)
        meta = parse_metadata(backend.properties.get(METADATA_KEY), source)
        reference = reference_from_metadata(meta, backend.properties, source)
        return cls(backend, meta, source, reference)

    # --- the vocabulary of added signs ---------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """Every sign the engine scores: the model's, then the added ones."""
        return self.vocabulary.labels(self.known_labels)

    def use_vocabulary_file(self, path: str | Path) -> None:
        """Load the vocabulary in ``path`` (none yet: an empty one) and remember the file."""
        self.set_vocabulary(load_vocabulary(path, self.require_embedding()))
        self.vocabulary_file = Path(path)

    def set_vocabulary(self, vocab: Vocabulary) -> None:
        """Score with ``vocab`` from now on (one assignment: safe beside running predictions)."""
        dim = self.require_embedding()
        if vocab.embedding_dim != dim:
            raise VocabularyError(
                f"the vocabulary has {vocab.embedding_dim}-d embeddings, this model's are {dim}-d"
            )
        self.vocabulary = self.with_current_head(vocab)

    def with_current_head(self, vocab: Vocabulary) -> Vocabulary:
        """``vocab`` with its head refitted if its signs changed since (when this model stores
        its known signs' embeddings: :func:`islr.vocabulary.fit_head`)."""
        if not vocab.signs or vocab.head_is_current(self.known_labels):
            return vocab
        return fit_head(vocab, self.reference, self.known_labels)

    def require_embedding(self) -> int:
        if self.embedding_dim is None:
            raise ModelError(
                f"{self.source}: this model has no sign embedding (exported by an older islr); "
                "export it again with `islr export` to add signs to it"
            )
        return self.embedding_dim

    @property
    def backend(self) -> str:
        """``"torch"`` or ``"onnx"``."""
        return self._backend.kind

    def prepare(
        self,
        item: LandmarkSequence | np.ndarray,
        image_size: tuple[int, int] | None = None,
        resampled: bool = True,
    ) -> np.ndarray:
        """One model input ``(seq_len, n_points, n_coords)`` float32 from a sequence or array
        (``(T, ...)``, its own frames, when not ``resampled``).

        A :class:`LandmarkSequence` may be in any layout (mapped by MediaPipe point) and carries
        its image size for the aspect correction. A bare array must be ``(T, n_points, C)`` in the
        model's layout, C = 2 or 3, in MediaPipe's units; ``image_size`` (width, height) gives
        its aspect correction.
        """
        seq_len = self.seq_len if resampled else None
        if isinstance(item, LandmarkSequence):
            if item.n_frames == 0:
                raise InputError("the sequence has no frames")
            return prepare_model_input(item, self.model_layout, seq_len, self.n_coords)
        data = aspect_correct(self._checked_array(item), *(image_size or (None, None)))
        data = to_layout(data, self.model_layout, self.model_layout, self.n_coords)
        return resample(data, self.seq_len) if resampled else data.astype(np.float32)

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

    def _checked_batch(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        expected = (self.seq_len, self.n_points, self.n_coords)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise InputError(f"a prepared batch must be (B, {expected}), got {batch.shape}")
        return batch

    def logits_batch(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits of prepared inputs ``(B, seq_len, n_points, n_coords)`` over the model's
        known signs (the head alone)."""
        batch = self._checked_batch(batch)
        if len(batch) == 0:
            return np.zeros((0, len(self.known_labels)), dtype=np.float32)
        chunks = [
            self._backend.logits(batch[i : i + PREDICT_CHUNK])
            for i in range(0, len(batch), PREDICT_CHUNK)
        ]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def logits_and_embedding_batch(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits ``(B, K)`` and unit embeddings ``(B, E)`` of prepared inputs."""
        batch = self._checked_batch(batch)
        if len(batch) == 0:
            return (
                np.zeros((0, len(self.known_labels)), dtype=np.float32),
                np.zeros((0, self.require_embedding()), dtype=np.float32),
            )
        self.require_embedding()
        parts = [
            self._backend.logits_and_embedding(batch[i : i + PREDICT_CHUNK])
            for i in range(0, len(batch), PREDICT_CHUNK)
        ]
        logits = np.concatenate([p[0] for p in parts]).astype(np.float32, copy=False)
        return logits, np.concatenate([p[1] for p in parts]).astype(np.float32, copy=False)

    def embed_prepared(self, batch: np.ndarray) -> np.ndarray:
        """Unit sign embeddings ``(B, E)`` of prepared inputs."""
        return self.logits_and_embedding_batch(batch)[1]

    def embed_batch(self, items: list[LandmarkSequence | np.ndarray]) -> np.ndarray:
        """Unit sign embeddings ``(B, E)`` of sequences or arrays (as :meth:`predict_batch`)."""
        if not items:
            return np.zeros((0, self.require_embedding()), dtype=np.float32)
        return self.embed_prepared(np.stack([self.prepare(item) for item in items]))

    def classify_prepared(self, batch: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Probabilities of prepared inputs over ``labels``, and those labels (taken together:
        the vocabulary may change between two calls)."""
        vocab = self.vocabulary
        labels = vocab.labels(self.known_labels)
        if not vocab.signs:
            return softmax(self.logits_batch(batch)), labels
        logits, embedding = self.logits_and_embedding_batch(batch)
        scores = vocabulary_log_scores(
            logits, embedding, vocab, self.known_labels, self.reference.calibration
        )
        return softmax(scores).astype(np.float32), labels

    def predict_prepared(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities of prepared inputs ``(B, seq_len, n_points, n_coords)`` over
        ``labels`` (known and added signs)."""
        return self.classify_prepared(batch)[0]

    def predict_batch(self, items: list[LandmarkSequence | np.ndarray]) -> np.ndarray:
        """Class probabilities ``(B, n_classes)`` for a list of sequences or arrays."""
        if not items:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        batch = np.stack([self.prepare(item) for item in items])
        return self.predict_prepared(batch)

    def predict(
        self, item: LandmarkSequence | np.ndarray, top_k: int = 5
    ) -> list[tuple[str, float]]:
        """The ``top_k`` most probable signs, best first, as ``(label, probability)``;
        InputError for a clip with no landmark in any frame (nobody in view: no sign)."""
        batch = self.prepare(item)[None]
        require_landmarks(batch)
        probs, labels = self.classify_prepared(batch)
        return top_labels(probs[0], labels, top_k)

    def top(self, probs: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
        """``(label, probability)`` of the ``top_k`` largest entries of ``probs``."""
        return top_labels(probs, self.labels, top_k)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary: the metadata plus which backend runs it."""
        return {
            **self.metadata,
            "layout": self.model_layout.to_dict(),
            "stream": self.stream.to_dict(),
            "labels": self.labels,
            "known_labels": list(self.known_labels),
            "backend": self.backend,
            "source": self.source,
            "n_classes": len(self.labels),
        }
