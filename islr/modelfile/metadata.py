"""The model file's contract: what an exported classifier's ONNX graph takes and returns, and the
metadata that describes it (read and written here, without torch).

The exported graph takes ``landmarks`` float32 ``[batch, seq_len, n_points, n_coords]`` (NaN =
not detected) and returns ``logits`` ``[batch, n_classes]`` and ``embedding`` ``[batch, E]`` (the
unit sign embedding that nearest-prototype matching of added signs uses). Everything a client needs to feed it
(labels, layout and its parts, seq_len, resampling rule, feature settings, and the streaming
segmenter's settings under ``"stream"``) is stored as JSON in the ONNX ``metadata_props`` under the
key ``"islr"``, so the ``.onnx`` file alone is enough. Under ``"embedding"`` it has the embedding's
size and the calibration of added signs' scores; the known signs' mean training embeddings (for
the near-duplicate check of a new sign) are under their own key, ``"islr.known_prototypes"``,
and some of their training embeddings (for refitting the vocabulary's head,
:mod:`islr.vocabulary.fit`) under ``"islr.known_embeddings"``, to keep ``"islr"`` small.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from islr import __version__
from islr.errors import ModelError, require
from islr.features.config import AugmentConfig
from islr.modelfile.arrays import decode_array, encode_array
from islr.modelfile.reference import (
    Calibration,
    EmbeddingReference,
    known_embeddings_from_dict,
)
from islr.streaming.config import StreamConfig

METADATA_KEY = "islr"
INPUT_NAME = "landmarks"
OUTPUT_NAME = "logits"
EMBEDDING_NAME = "embedding"
PROTOTYPES_KEY = "islr.known_prototypes"
KNOWN_EMBEDDINGS_KEY = "islr.known_embeddings"
EXPORT_FORMAT = 2  # 2: the embedding output; part of cached exports' keys
OPSET = 17
RESAMPLE_RULE = "nearest-centre"


def model_metadata(
    spec: Any, stream: StreamConfig | None = None, embedding_dim: int | None = None
) -> dict[str, Any]:
    """The contract's ``"islr"`` metadata for a :class:`~islr.models.ModelSpec`; ``stream``: the
    segmenter's settings for this model (default: :class:`StreamConfig`'s); ``embedding_dim``:
    the size of the model's embedding output (its calibration comes from the checkpoint's
    ``extra["embedding"]``, else the defaults)."""
    layout = spec.layout_object()
    meta = {
        "labels": list(spec.labels),
        "layout": layout.to_dict(),
        "n_points": layout.n_points,
        "n_coords": int(spec.n_coords),
        "seq_len": int(spec.features.seq_len),
        "resample": RESAMPLE_RULE,
        "version": __version__,
        "model": spec.model.name,
        "model_kwargs": dict(spec.model.kwargs),
        "members": int(getattr(spec, "members", 1)),
        "features": asdict(spec.features),
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "stream": (stream or recipe_stream(spec)).to_dict(),
    }
    if embedding_dim is not None:
        meta["embedding"] = embedding_metadata(embedding_reference(spec), embedding_dim)
    return meta


def recipe_stream(spec: Any) -> StreamConfig:
    """The stream settings a checkpoint's training recipe brought (``train_config["stream"]``),
    over the defaults."""
    train_config = spec.extra.get("train_config") or {}
    return StreamConfig.from_dict(train_config.get("stream") or {})


def recipe_augment(spec: Any) -> AugmentConfig:
    """The augmentations a checkpoint's training recipe used (``train_config["augment"]``), over
    the defaults."""
    train_config = spec.extra.get("train_config") or {}
    return AugmentConfig.from_dict(train_config.get("augment"))


def augment_config(meta: dict[str, Any], where: str = "the model") -> AugmentConfig:
    """The augmentations of a model's training recipe as its metadata carries them
    (``"augment"``); the defaults (the default recipe's) for a model exported without them."""
    try:
        return AugmentConfig.from_dict(meta.get("augment"))
    except (TypeError, ValueError) as e:
        raise ModelError(f"{where}: the {METADATA_KEY!r} metadata's augment settings: {e}") from e


def embedding_reference(spec: Any) -> EmbeddingReference:
    """The calibration and known-sign prototypes a checkpoint carries (defaults when none)."""
    return EmbeddingReference.from_dict(spec.extra.get("embedding"))


def embedding_metadata(reference: EmbeddingReference, dim: int) -> dict[str, Any]:
    """The ``"embedding"`` entry of the metadata (the prototypes travel apart)."""
    return {
        "output": EMBEDDING_NAME,
        "dim": int(dim),
        "calibration": reference.calibration.to_dict(),
        "duplicate_similarity": reference.duplicate_similarity,
        "source": reference.source,
        "known_prototypes": reference.known_prototypes is not None,
        "known_embeddings": reference.known_embeddings is not None,
    }


def stream_config(meta: dict[str, Any], where: str = "the model") -> StreamConfig:
    """The segmenter settings a model's metadata carries (defaults for a model exported before
    they travelled); :class:`ModelError` when they are broken."""
    try:
        return StreamConfig.from_dict(meta.get("stream"))
    except (TypeError, ValueError) as e:
        raise ModelError(f"{where}: the {METADATA_KEY!r} metadata's stream settings: {e}") from e


def read_onnx_metadata(model_bytes_or_path: bytes | str | Path) -> dict[str, Any]:
    """The ``"islr"`` metadata of an ONNX model; :class:`ModelError` when absent or broken."""
    onnx = require("onnx", "reading ONNX metadata with islr.modelfile.read_onnx_metadata")

    where = "the ONNX model"
    try:
        if isinstance(model_bytes_or_path, bytes):
            proto = onnx.load_model_from_string(model_bytes_or_path)
        else:
            where = str(model_bytes_or_path)
            proto = onnx.load(str(model_bytes_or_path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise ModelError(f"{where}: not a readable ONNX model ({type(e).__name__})") from e
    props = {p.key: p.value for p in proto.metadata_props}
    return parse_metadata(props.get(METADATA_KEY), where)


def parse_metadata(text: str | None, where: str) -> dict[str, Any]:
    """Parse and check the ``"islr"`` JSON of a model."""
    if text is None:
        raise ModelError(
            f"{where}: no {METADATA_KEY!r} metadata (export the model with `islr export`)"
        )
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelError(f"{where}: the {METADATA_KEY!r} metadata is not JSON ({e.msg})") from e
    missing = [k for k in ("labels", "layout", "n_points", "n_coords", "seq_len") if k not in meta]
    if missing:
        raise ModelError(f"{where}: the {METADATA_KEY!r} metadata lacks {', '.join(missing)}")
    return meta


def reference_from_metadata(
    meta: dict[str, Any], properties: dict[str, str], where: str = "the model"
) -> EmbeddingReference:
    """The :class:`EmbeddingReference` a model file carries: the calibration in its metadata's
    ``"embedding"``, the known prototypes and embeddings under their own keys (``properties``:
    the file's ``metadata_props``)."""
    embedding = meta.get("embedding") or {}
    prototypes = properties.get(PROTOTYPES_KEY)
    stored = properties.get(KNOWN_EMBEDDINGS_KEY)
    try:
        known = None if prototypes is None else decode_array(json.loads(prototypes))
        examples = known_embeddings_from_dict(None if stored is None else json.loads(stored))
    except json.JSONDecodeError:
        raise ModelError(f"{where}: the known-sign embeddings are not JSON") from None
    return EmbeddingReference(
        Calibration.from_dict(embedding.get("calibration")),
        known,
        float(embedding.get("duplicate_similarity", EmbeddingReference().duplicate_similarity)),
        str(embedding.get("source", "default")),
        *examples,
    )


def reference_properties(reference: EmbeddingReference) -> dict[str, str]:
    """The ``metadata_props`` entries that carry a reference's arrays (the inverse of
    :func:`reference_from_metadata`'s ``properties``)."""
    properties = {}
    if reference.known_prototypes is not None:
        properties[PROTOTYPES_KEY] = json.dumps(encode_array(reference.known_prototypes))
    known_embeddings = reference.known_embeddings_dict()
    if known_embeddings is not None:
        properties[KNOWN_EMBEDDINGS_KEY] = json.dumps(known_embeddings)
    return properties


def set_metadata(proto: Any, meta: dict[str, Any]) -> None:
    """Write ``meta`` as the ``"islr"`` metadata of an ONNX ``ModelProto``."""
    set_property(proto, METADATA_KEY, json.dumps(meta))


def set_property(proto: Any, key: str, value: str) -> None:
    """Set one ``metadata_props`` entry of an ONNX ``ModelProto`` (replacing the old one)."""
    for prop in list(proto.metadata_props):
        if prop.key == key:
            proto.metadata_props.remove(prop)
    entry = proto.metadata_props.add()
    entry.key = key
    entry.value = value


def onnx_properties(model_bytes: bytes) -> dict[str, str]:
    """Every ``metadata_props`` entry of ONNX model bytes."""
    import onnx

    return {p.key: p.value for p in onnx.load_model_from_string(model_bytes).metadata_props}
