"""Request and response bodies of the HTTP API (they make the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictFloat, StrictInt

# Strict: a coordinate sent as a string or a boolean is a 422, not silently converted.
Point = list[StrictFloat] | None
Frame = list[Point]
MAX_IMAGE_SIDE = 100_000  # pixels; larger sizes are mistakes (and overflow float math)


class LandmarksBody(BaseModel):
    """One landmark sequence as MediaPipe gives it, with the size of its images."""

    frames: list[Frame] = Field(
        ...,
        description="[T][N][C]: T frames of N points of C = 2 or 3 coordinates (x, y[, z]) as "
        "MediaPipe gives them; null for a point that was not detected (NaN/Infinity are "
        "rejected). Any T up to the server's --max-frames (--max-take-frames for a sign's "
        "take); it is resampled to the model's seq_len.",
        min_length=1,
    )
    layout: str | None = Field(
        None,
        description="Layout of the N points (e.g. holistic136, hands_pose75); default: the "
        "model's. Another known layout is mapped by MediaPipe point.",
    )
    image_width: StrictInt | None = Field(
        None,
        gt=0,
        le=MAX_IMAGE_SIDE,
        description="Source image width in pixels (with image_height: aspect fix).",
    )
    image_height: StrictInt | None = Field(
        None, gt=0, le=MAX_IMAGE_SIDE, description="Source image height in pixels."
    )


class PredictRequest(LandmarksBody):
    """One landmark sequence to classify."""

    top_k: StrictInt = Field(5, ge=1, le=1000, description="How many signs to return.")


class SignProbability(BaseModel):
    label: str
    prob: float


class Timing(BaseModel):
    total: float = Field(..., description="Handling time in the server, ms.")
    model: float = Field(..., description="Classifier time, ms.")
    extract: float | None = Field(None, description="Landmark extraction time (videos), ms.")


class PredictResponse(BaseModel):
    label: str = Field(..., description="The most probable sign.")
    prob: float
    top: list[SignProbability]
    signing: bool = Field(
        ...,
        description="False when no hand is in view in enough frames: no sign, whatever label says.",
    )
    n_frames: int = Field(..., description="Frames received (before resampling).")
    timing_ms: Timing


class Health(BaseModel):
    status: str
    model: str
    backend: str
