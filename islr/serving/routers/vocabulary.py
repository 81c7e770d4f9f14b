"""``/v1/vocabulary``: list, check, add, rename and remove the signs added to the served model.

- ``GET /v1/vocabulary``: every sign (known and added, with the added ones' prototypes), the
  calibration of added signs' scores, the limits and whether writes are allowed; the page scores
  added signs in the browser with these (the same rule as :mod:`islr.vocabulary`).
- ``POST /v1/vocabulary/check``: takes of a sign -> how consistent they are and the nearest
  other sign (flagged when too close); never writes.
- ``POST /v1/vocabulary``: the same body plus ``force`` -> adds the takes (a new sign, or more
  examples of an existing one); 403 unless the server runs with ``islr serve --allow-enroll``,
  413 for a take over the limits, 409 with the check when flagged and not forced.
- ``DELETE /v1/vocabulary?label=NAME``, ``PATCH /v1/vocabulary?label=NAME``
  (``{"label": new}``): the name as a query parameter, so any name works (``big / large``,
  ``..``); ``/v1/vocabulary/{label}`` still works for names without ``/``.

Writes need ``islr serve --allow-enroll`` (else 403) and the server's write token
(``Authorization: Bearer TOKEN``, else 401; :mod:`islr.serving.guard`).

Every change is written atomically to the vocabulary file beside the model before it is used,
and ``/v1/predict``, ``WS /v1/stream`` and ``GET /v1/model`` see it at once.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from islr.errors import InputError, ModelError, VocabularyError
from islr.inference.enroll import (
    TAKE_AUGMENTATIONS,
    DuplicateSignError,
    TakeEmbeddings,
    add_takes,
    check_takes,
    embed_takes,
)
from islr.serving.guard import require_write_token
from islr.serving.inputs import body_landmarks
from islr.serving.limits import parse_json_body, read_json_bytes
from islr.serving.schemas import LandmarksBody
from islr.serving.state import ServeConfig, ServerState, server_state
from islr.vocabulary import UnknownSignError, Vocabulary, check_label, save_vocabulary

router = APIRouter(tags=["vocabulary"])
State = Annotated[ServerState, Depends(server_state)]


class Take(LandmarksBody):
    """One recording of a sign, as the body of ``POST /v1/predict`` (without top_k)."""


class EnrolRequest(BaseModel):
    label: str = Field(..., description="The sign's name (a new one, or one to add examples to).")
    takes: list[Take] = Field(..., min_length=1, description="Recordings of the sign.")
    force: bool = Field(False, description="Add it even when it is flagged as too close.")


class RenameRequest(BaseModel):
    label: str = Field(..., description="The new name.")


def _sign(engine: Any, vocab: Vocabulary, label: str) -> dict[str, Any]:
    added = vocab.find(label)
    entry: dict[str, Any] = {
        "label": label,
        "kind": "known" if label in engine.known_labels else "added",
        "examples": added.examples if added else 0,
        "provenance": [dict(p) for p in added.provenance] if added else [],
    }
    if added is not None:
        entry["prototypes"] = added.to_dict()["prototypes"]
    return entry


def vocabulary_listing(state: ServerState) -> dict[str, Any]:
    """The body of ``GET /v1/vocabulary``."""
    engine, config = state.engine, state.config
    vocab = engine.vocabulary
    return {
        "allow_enroll": config.allow_enroll and engine.embedding_dim is not None,
        "limits": {
            "max_takes": config.max_takes,
            "max_take_frames": config.max_take_frames,
            "max_take_bytes": config.max_take_bytes,
        },
        "calibration": engine.reference.calibration.to_dict(),
        "embedding_dim": engine.embedding_dim,
        "duplicate_similarity": engine.reference.duplicate_similarity,
        "file": str(engine.vocabulary_file) if engine.vocabulary_file else None,
        "signs": [_sign(engine, vocab, label) for label in vocab.labels(engine.known_labels)],
        # the refitted head that scores added signs (islr.vocabulary.fit); none: nearest take
        "head": vocab.head.to_dict() if vocab.head_is_current(engine.known_labels) else None,
    }


@router.get("/v1/vocabulary")
async def list_vocabulary(state: State) -> dict:
    """Every sign of the model (known, then added), the calibration and the limits."""
    return vocabulary_listing(state)


def _require_writes(state: ServerState, request: Request) -> None:
    if not state.config.allow_enroll:
        raise HTTPException(
            403,
            "this server does not change its vocabulary: start it with islr serve --allow-enroll",
        )
    require_write_token(request)
    _require_embedding(state)


def _require_embedding(state: ServerState) -> None:
    if state.engine.embedding_dim is None:
        raise HTTPException(
            409,
            "this model has no sign embedding (exported by an older islr): export it again with "
            "islr export to add signs to it",
        )


async def _enrol_request(request: Request, state: ServerState) -> EnrolRequest:
    """The body, within the limits: 413 for too many takes or a take too large or too long;
    parsed and validated in a worker thread."""
    config = state.config
    raw = await read_json_bytes(request, config.max_enrol_bytes, config.request_timeout_s)
    return await run_in_threadpool(_checked_enrol_request, config, raw)


def _checked_enrol_request(config: ServeConfig, raw: bytes) -> EnrolRequest:
    body = parse_json_body(EnrolRequest, raw)
    if len(body.takes) > config.max_takes:
        raise HTTPException(
            413, f"{len(body.takes)} takes; this server takes at most {config.max_takes}"
        )
    for i, take in enumerate(body.takes):
        if len(take.frames) > config.max_take_frames:
            raise HTTPException(
                413,
                f"take {i}: {len(take.frames)} frames, more than this server's "
                f"{config.max_take_frames}",
            )
        size = len(take.model_dump_json(exclude_none=True))
        if size > config.max_take_bytes:
            raise HTTPException(
                413, f"take {i}: {size} bytes, more than this server's {config.max_take_bytes}"
            )
    return body


def _take_embeddings(state: ServerState, takes: list[Take], copies: int = 0) -> TakeEmbeddings:
    """Embeddings of the takes, and of ``copies`` augmented copies of each (worker thread)."""
    engine = state.engine
    arrays, sizes = [], []
    for i, take in enumerate(takes):
        data, size = body_landmarks(engine, take, f"take {i}")
        if np.isnan(data).all():
            raise InputError(f"take {i}: no landmarks in any frame (nobody was detected)")
        arrays.append(data)
        sizes.append(size)
    return embed_takes(engine, arrays, copies, sizes)


@router.post("/v1/vocabulary/check")
async def check(request: Request, state: State) -> dict:
    """How consistent the takes are and which other sign is nearest; never writes."""
    _require_embedding(state)
    body = await _enrol_request(request, state)
    takes = await run_in_threadpool(_take_embeddings, state, body.takes)
    return check_takes(state.engine, body.label, takes.embeddings).to_dict()


@router.post("/v1/vocabulary")
async def enrol(request: Request, state: State) -> Any:
    """Add the takes to the sign ``label`` (new, or more examples of an existing one)."""
    _require_writes(state, request)
    body = await _enrol_request(request, state)
    takes = await run_in_threadpool(_take_embeddings, state, body.takes, TAKE_AUGMENTATIONS)
    engine = state.engine
    async with state.vocabulary_lock:
        result = check_takes(engine, body.label, takes.embeddings)
        try:
            source = f"{len(body.takes)} takes via the server"
            new = add_takes(engine.vocabulary, result, takes, source, body.force)
        except DuplicateSignError as e:
            return JSONResponse({**e.check.to_dict(), "detail": str(e)}, status_code=409)
        new = await run_in_threadpool(engine.with_current_head, new)
        _commit(state, new)
    return {**result.to_dict(), "sign": _sign(engine, new, result.label)}


LabelQuery = Annotated[
    str, Query(description="The sign's name, exactly as GET /v1/vocabulary lists it.")
]


@router.delete("/v1/vocabulary")
async def remove(request: Request, state: State, label: LabelQuery) -> dict:
    """Remove an added sign (or a known sign's added examples): ``?label=NAME``, which works for
    any name (``big / large``, ``..``); answers the new listing."""
    _require_writes(state, request)
    engine = state.engine
    async with state.vocabulary_lock:
        new = _changed(lambda v: v.removed(label, engine.known_labels), engine)
        _commit(state, await run_in_threadpool(engine.with_current_head, new))
    return vocabulary_listing(state)


@router.delete("/v1/vocabulary/{label}", include_in_schema=False)
async def remove_by_path(request: Request, state: State, label: str) -> dict:
    """The older form of ``DELETE /v1/vocabulary?label=``, for names without ``/``."""
    return await remove(request, state, label)


@router.patch("/v1/vocabulary")
async def rename(request: Request, state: State, label: LabelQuery) -> dict:
    """Rename an added sign: ``?label=OLD`` with the body ``{"label": NEW}``."""
    _require_writes(state, request)
    config = state.config
    raw = await read_json_bytes(request, 64 * 1024, config.request_timeout_s)
    body = await run_in_threadpool(parse_json_body, RenameRequest, raw)
    engine = state.engine
    async with state.vocabulary_lock:
        new = _changed(lambda v: v.renamed(label, body.label, engine.known_labels), engine)
        _commit(state, new)
    return _sign(engine, new, check_label(body.label))


@router.patch("/v1/vocabulary/{label}", include_in_schema=False)
async def rename_by_path(request: Request, state: State, label: str) -> dict:
    """The older form of ``PATCH /v1/vocabulary?label=``, for names without ``/``."""
    return await rename(request, state, label)


def _changed(change: Any, engine: Any) -> Vocabulary:
    try:
        return change(engine.vocabulary)
    except UnknownSignError as e:
        raise HTTPException(404, str(e)) from None
    except VocabularyError as e:
        raise HTTPException(409, str(e)) from None


def _commit(state: ServerState, vocab: Vocabulary) -> None:
    """Persist, then serve: a change that cannot be written is not made."""
    engine = state.engine
    if engine.vocabulary_file is None:
        raise ModelError("this server has no vocabulary file to write to")
    try:
        save_vocabulary(engine.vocabulary_file, vocab)
    except OSError as e:
        raise HTTPException(500, f"cannot write {engine.vocabulary_file}: {e}") from None
    engine.set_vocabulary(vocab)
