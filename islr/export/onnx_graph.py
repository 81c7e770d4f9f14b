"""The one way a torch module becomes an ONNX graph here, shared by the classifier's and the
segmenter's exporters: the same exporter, opset and finishing touches (metadata, producer,
checked)."""

from __future__ import annotations

import io
import warnings
from typing import Any

from islr import __version__
from islr.errors import require
from islr.modelfile import OPSET, set_property


def trace_to_onnx(
    module: Any,
    example: Any,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> Any:
    """The ONNX ``ModelProto`` of ``module`` traced on ``example``."""
    onnx = require("onnx", "exporting a model to ONNX")
    import torch

    buf = io.BytesIO()
    # The legacy (TorchScript) exporter: the dynamo one fails on nn.TransformerEncoder here.
    # Its tracer warnings concern shapes read in Python, which the parity tests cover.
    # Its notes (deprecation, tracer, constant folding) are silenced: chosen, see above.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_model_from_string(buf.getvalue())


def finished_bytes(proto: Any, properties: dict[str, str]) -> bytes:
    """``proto`` with its metadata ``properties`` (in order) and islr as its producer, checked,
    as bytes."""
    import onnx

    for key, value in properties.items():
        set_property(proto, key, value)
    proto.producer_name = "islr"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    return proto.SerializeToString()
