"""``/healthz``, ``/v1/model`` (the input contract), ``/v1/model.onnx`` and the learned
segmenter ``/v1/segmenter.onnx``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from islr.serving.schemas import Health
from islr.serving.state import ServerState, server_state

router = APIRouter()
State = Annotated[ServerState, Depends(server_state)]


@router.get("/healthz", response_model=Health, tags=["service"])
async def healthz(state: State) -> dict:
    return {"status": "ok", "model": state.engine.source, "backend": state.engine.backend}


@router.get("/v1/model", tags=["model"])
async def model_info(state: State) -> dict:
    """The model's input contract: labels (known, then added signs), layout (name and parts),
    n_points, n_coords, seq_len, resampling rule, feature settings, version."""
    labels = state.engine.labels
    return {**state.model_info, "labels": labels, "n_classes": len(labels)}


@router.get(
    "/v1/model.onnx",
    tags=["model"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def model_onnx(state: State) -> Response:
    """The classifier as ONNX (input "landmarks", outputs "logits" and "embedding", metadata key
    "islr"); the added signs are in GET /v1/vocabulary."""
    return Response(
        state.onnx_bytes,
        media_type="application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="model.onnx"'},
    )


@router.get(
    "/v1/segmenter.onnx",
    tags=["model"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
)
async def segmenter_onnx(state: State) -> Response:
    """The learned sign segmenter as ONNX (input "landmarks", output "tags": O/B/I per frame;
    metadata key "islr_segmenter"); 404 when the model has none (the page then segments with
    the heuristic)."""
    seg = state.engine.segmenter
    if seg is None:
        raise HTTPException(404, "this model has no learned segmenter")
    return Response(
        seg.model_bytes,
        media_type="application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="segmenter.onnx"'},
    )
