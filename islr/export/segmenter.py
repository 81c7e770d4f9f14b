"""A trained segmenter -> ONNX, with the segmenter file's contract (:mod:`islr.modelfile`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from islr.export.onnx_graph import finished_bytes, trace_to_onnx
from islr.landmarks import atomic_write_bytes, get_layout
from islr.modelfile import INPUT_NAME, SEGMENTER_KEY, TAGS_NAME, segmenter_metadata


def export_segmenter(
    model: Any, out: str | Path, trained_on: str = "", stream: dict[str, Any] | None = None
) -> Path:
    """Write an eval-mode :class:`~islr.models.segmenter.SignSegmenter` as ONNX (atomically)."""
    import torch

    from islr.models.segmenter import SegmenterProbs

    cfg = model.config
    n_points = get_layout(cfg.layout).n_points
    example = torch.rand(1, cfg.window, n_points, cfg.n_coords)
    example[0, :5, :21] = float("nan")
    proto = trace_to_onnx(
        SegmenterProbs(model.eval()),
        example,
        input_names=[INPUT_NAME],
        output_names=[TAGS_NAME],
        dynamic_axes={
            INPUT_NAME: {0: "batch", 1: "frames"},
            TAGS_NAME: {0: "batch", 1: "frames"},
        },
    )
    meta = segmenter_metadata(cfg, trained_on, stream)
    out = Path(out)
    atomic_write_bytes(out, finished_bytes(proto, {SEGMENTER_KEY: json.dumps(meta)}))
    return out
