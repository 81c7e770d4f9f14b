"""Checkpoint -> ONNX: the whole classifier (normalisation included) with its input contract.

The exported graph takes ``landmarks`` float32 ``[batch, seq_len, n_points, n_coords]`` (NaN =
not detected) and returns ``logits`` ``[batch, n_classes]`` and ``embedding`` ``[batch, E]`` (the
unit sign embedding that nearest-prototype matching of added signs uses). Everything a client needs to feed it
(labels, layout and its parts, seq_len, resampling rule, feature settings, and the streaming
segmenter's settings under ``"stream"``) is stored as JSON in the ONNX ``metadata_props`` under the
key ``"islr"``, so the ``.onnx`` file alone is enough. Under ``"embedding"`` it has the embedding's
size and the calibration of added signs' scores; the known signs' mean training embeddings (for
the near-duplicate check of a new sign) are under their own key, ``"islr.known_prototypes"``,
and some of their training embeddings (for refitting the vocabulary's head,
:mod:`islr.inference.refit`) under ``"islr.known_embeddings"``, to keep ``"islr"`` small.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from islr import __version__
from islr.errors import ModelError, require
from islr.inference.streaming import StreamConfig
from islr.inference.vocabulary import EmbeddingReference, encode_array
from islr.landmarks import atomic_write_bytes

METADATA_KEY = "islr"
INPUT_NAME = "landmarks"
OUTPUT_NAME = "logits"
EMBEDDING_NAME = "embedding"
PROTOTYPES_KEY = "islr.known_prototypes"
KNOWN_EMBEDDINGS_KEY = "islr.known_embeddings"
EXPORT_FORMAT = 2  # 2: the embedding output; part of cached exports' keys
OPSET = 17
RESAMPLE_RULE = "nearest-centre"
_PRE_PROCESSED_KEY = "onnx.quant.pre_process"  # onnxruntime.quantization's marker


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


def embedding_dim_of(model: Any, spec: Any) -> int:
    """The size of a model's embedding (one forward pass on a blank input)."""
    import torch

    with torch.no_grad():
        blank = torch.zeros(1, spec.features.seq_len, model.n_points, spec.n_coords)
        return int(model.embed(blank).shape[1])


def stream_config(meta: dict[str, Any], where: str = "the model") -> StreamConfig:
    """The segmenter settings a model's metadata carries (defaults for a model exported before
    they travelled); :class:`ModelError` when they are broken."""
    try:
        return StreamConfig.from_dict(meta.get("stream"))
    except (TypeError, ValueError) as e:
        raise ModelError(f"{where}: the {METADATA_KEY!r} metadata's stream settings: {e}") from e


def read_onnx_metadata(model_bytes_or_path: bytes | str | Path) -> dict[str, Any]:
    """The ``"islr"`` metadata of an ONNX model; :class:`ModelError` when absent or broken."""
    onnx = require("onnx", "reading ONNX metadata with islr.inference.read_onnx_metadata")

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


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote."""

    path: Path
    bytes: int
    int8: bool
    metadata: dict[str, Any]


def onnx_bytes_from_checkpoint(
    checkpoint: str | Path, reference: EmbeddingReference | None = None
) -> bytes:
    """Export a checkpoint (RUN_DIR or ``.pt``) to fp32 ONNX bytes with metadata; ``reference``:
    the embedding's calibration and known prototypes (default: what the checkpoint carries)."""
    require("torch", "exporting a checkpoint to ONNX")
    require("onnx", "exporting a checkpoint to ONNX")
    from islr.models import load_classifier

    model, spec = load_classifier(checkpoint)
    return onnx_bytes_from_model(model, spec, reference)


def onnx_bytes_from_model(
    model: Any, spec: Any, reference: EmbeddingReference | None = None
) -> bytes:
    """fp32 ONNX bytes of an eval-mode :class:`~islr.models.SignClassifier` and its spec;
    ``reference``: the embedding's calibration and known prototypes (default: the spec's)."""
    onnx = require("onnx", "exporting a model to ONNX")
    import torch

    from islr.models.classifier import LogitsAndEmbedding

    model = model.eval()
    example = torch.rand(2, spec.features.seq_len, model.n_points, spec.n_coords)
    example[0, :, : model.n_points // 4] = float("nan")
    buf = io.BytesIO()
    # The legacy (TorchScript) exporter: the dynamo one fails on nn.TransformerEncoder here.
    # Its tracer warnings concern shapes read in Python, which the parity tests cover.
    # Gradients stay on: without them nn.TransformerEncoder takes its fused fast path
    # (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    model.requires_grad_(True)
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy exporter": chosen, see above
        torch.onnx.export(
            LogitsAndEmbedding(model),
            (example,),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME, EMBEDDING_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch"},
                OUTPUT_NAME: {0: "batch"},
                EMBEDDING_NAME: {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_model_from_string(buf.getvalue())
    reference = reference or embedding_reference(spec)
    meta = model_metadata(spec)
    meta["embedding"] = embedding_metadata(reference, embedding_dim_of(model, spec))
    _set_metadata(proto, meta)
    if reference.known_prototypes is not None:
        _set_property(proto, PROTOTYPES_KEY, json.dumps(encode_array(reference.known_prototypes)))
    known_embeddings = reference.known_embeddings_dict()
    if known_embeddings is not None:
        _set_property(proto, KNOWN_EMBEDDINGS_KEY, json.dumps(known_embeddings))
    proto.producer_name = "islr"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _set_metadata(proto: Any, meta: dict[str, Any]) -> None:
    _set_property(proto, METADATA_KEY, json.dumps(meta))


def _set_property(proto: Any, key: str, value: str) -> None:
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


def quantize_int8(fp32_bytes: bytes) -> bytes:
    """Dynamic int8 quantisation of the MatMul/Gemm weights, per output channel (metadata kept).

    The first matrix product (the stem, fed by the hand-made features whose ranges differ
    widely; in an ensemble, every member's) stays fp32: quantising its input per tensor cost the most fidelity, at ~0.3 MB.
    On a briefly trained INCLUDE-50 model this halved the largest probability change
    (0.035 -> 0.012) and made int8 agree with fp32 on all 77 validation videos.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    meta = read_onnx_metadata(fp32_bytes)
    fp32 = onnx.load_model_from_string(fp32_bytes)
    prototypes = {p.key: p.value for p in fp32.metadata_props}.get(PROTOTYPES_KEY)
    products = [n for n in fp32.graph.node if n.op_type in ("MatMul", "Gemm")]
    # the stem(s): products of the features themselves (one per member of an ensemble)
    stem = [n.name for n in products if n.input[0] == products[0].input[0]]
    # The exported graph has static shapes, so ONNX Runtime's quantisation pre-processing is
    # skipped on purpose; the tag says so and keeps quantize_dynamic from advising it in the
    # log on every call (the output drops the tag again).
    fp32.metadata_props.add(key=_PRE_PROCESSED_KEY, value="onnxruntime.quant")
    with tempfile.TemporaryDirectory(prefix="islr-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(fp32, str(src))
        # Only matrix products: int8 ConvInteger kernels are missing or slow in ONNX
        # Runtime's CPU provider, and the depthwise convolutions hold few weights anyway.
        quantize_dynamic(
            src,
            dst,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=stem,
        )
        proto = onnx.load(str(dst))
    for prop in [p for p in proto.metadata_props if p.key == _PRE_PROCESSED_KEY]:
        proto.metadata_props.remove(prop)
    _set_metadata(proto, {**meta, "quantization": "dynamic-int8"})
    if prototypes is not None:
        _set_property(proto, PROTOTYPES_KEY, prototypes)
    return proto.SerializeToString()


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    int8: bool = False,
    reference: EmbeddingReference | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``out`` (written atomically); ``int8`` quantises dynamically;
    ``reference``: the embedding's calibration and known prototypes (default: the checkpoint's,
    see :func:`islr.inference.enroll.reference_from_samples`)."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ModelError(f"{out}: the output file must end in .onnx")
    if out.is_dir():
        raise ModelError(f"{out} is a folder; give a file name like {out / 'model.onnx'}")
    payload = onnx_bytes_from_checkpoint(checkpoint, reference)
    if int8:
        payload = quantize_int8(payload)
    atomic_write_bytes(out, payload)
    return ExportResult(out, len(payload), int8, read_onnx_metadata(payload))


def cached_onnx_bytes(checkpoint: str | Path, cache_dir: str | Path | None = None) -> bytes:
    """ONNX bytes of a checkpoint, exported once and reused while the checkpoint is unchanged."""
    import hashlib

    path = Path(checkpoint)
    ckpt = path / "best.pt" if path.is_dir() else path
    if not ckpt.is_file():
        raise ModelError(f"{ckpt}: no such checkpoint (train one with `islr train`)")
    stat = ckpt.stat()
    key = hashlib.sha256(
        f"{ckpt.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{__version__}|{EXPORT_FORMAT}".encode()
    ).hexdigest()[:16]
    root = Path(cache_dir or os.environ.get("ISLR_CACHE", Path(tempfile.gettempdir()) / "islr"))
    cached = root / "onnx" / f"{key}.onnx"
    if cached.is_file():
        return cached.read_bytes()
    payload = onnx_bytes_from_checkpoint(ckpt)
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-export next time
        atomic_write_bytes(cached, payload)
    return payload
