"""Checkpoint -> ONNX: the whole classifier (normalisation included) with the model file's
contract (:mod:`islr.modelfile`): ``landmarks`` in, ``logits`` and ``embedding`` out, the
``"islr"`` metadata, the known signs' embeddings."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from islr import __version__
from islr.errors import ModelError, require
from islr.export.onnx_graph import finished_bytes, trace_to_onnx
from islr.landmarks import atomic_write_bytes
from islr.modelfile import (
    EMBEDDING_NAME,
    EXPORT_FORMAT,
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    PROTOTYPES_KEY,
    EmbeddingReference,
    embedding_metadata,
    embedding_reference,
    model_metadata,
    read_onnx_metadata,
    reference_properties,
    set_metadata,
    set_property,
)

_PRE_PROCESSED_KEY = "onnx.quant.pre_process"  # onnxruntime.quantization's marker


def embedding_dim_of(model: Any, spec: Any) -> int:
    """The size of a model's embedding (one forward pass on a blank input)."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        blank = torch.zeros(1, spec.features.seq_len, model.n_points, spec.n_coords, device=device)
        return int(model.embed(blank).shape[1])


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
    import torch

    from islr.models.classifier import LogitsAndEmbedding

    model = model.eval()
    example = torch.rand(2, spec.features.seq_len, model.n_points, spec.n_coords)
    example[0, :, : model.n_points // 4] = float("nan")
    # Gradients stay on: without them nn.TransformerEncoder takes its fused fast path
    # (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    model.requires_grad_(True)
    with torch.enable_grad():
        proto = trace_to_onnx(
            LogitsAndEmbedding(model),
            example,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME, EMBEDDING_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch"},
                OUTPUT_NAME: {0: "batch"},
                EMBEDDING_NAME: {0: "batch"},
            },
        )
    reference = reference or embedding_reference(spec)
    meta = model_metadata(spec)
    meta["embedding"] = embedding_metadata(reference, embedding_dim_of(model, spec))
    properties = {METADATA_KEY: json.dumps(meta), **reference_properties(reference)}
    return finished_bytes(proto, properties)


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
    set_metadata(proto, {**meta, "quantization": "dynamic-int8"})
    if prototypes is not None:
        set_property(proto, PROTOTYPES_KEY, prototypes)
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
