"""The server's settings and the one state object its routers share (``app.state.islr``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from islr.errors import ConfigError
from islr.inference import Engine
from islr.streaming import StreamConfig


@dataclass
class ServeConfig:
    """Limits and settings of the server."""

    max_upload_mb: float = 50.0
    max_frames: int = 1000
    max_json_mb: float = 16.0  # a POST /v1/predict body (1000 frames of 543 points fit)
    max_video_seconds: float = 60.0  # an uploaded video's duration (and max_frames frames)
    request_timeout_s: float = 30.0  # a request body must arrive within this
    video_timeout_s: float = 120.0  # extraction of one upload stops after this
    max_stream_errors: int = 100  # bad WebSocket messages answered before the socket is closed
    max_stream_message_bytes: int = 1024 * 1024  # one WebSocket message (a frame: ~30 KB)
    stream_idle_s: float = 300.0  # a WebSocket with no message for this long is closed
    # Frames of a stream must come in time order, at most this fast: the segmenter keeps a
    # segment's frames until max_sign_seconds of stream time have passed, so equal or
    # ever-closer times would make it keep every frame.
    min_frame_interval_s: float = 1 / 240
    threads: int | None = None  # intra-op threads of the classifier
    # The segmenter's settings: the model's (its metadata's "stream"), or this whole config when
    # given; stream_overrides (e.g. {"threshold": 0.7} from `islr serve --threshold`) go on top.
    # WS /v1/stream segments with the result and GET /v1/model serves it to the page.
    stream: StreamConfig | None = None
    stream_overrides: dict[str, Any] = field(default_factory=dict)
    # The vocabulary of added signs: /v1/vocabulary changes it only with allow_enroll; the file
    # (default: beside the model, X.vocab.json; for a shipped model ./NAME.vocab.json).
    allow_enroll: bool = False
    vocabulary: Path | None = None
    max_takes: int = 20  # per request
    max_take_frames: int = 300  # 10 s at 30 fps
    max_take_bytes: int = 2 * 1024 * 1024  # one take's JSON
    # Browser pages of other origins that may write and stream (the server's own page always
    # may), and the write token the vocabulary's writes need (default: a new one per process).
    allow_origins: tuple[str, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    token: str | None = None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_mb * 1024 * 1024)

    @property
    def max_enrol_bytes(self) -> int:
        return self.max_takes * self.max_take_bytes + 4096

    def stream_config(self, engine: Engine) -> StreamConfig:
        """The segmenter settings this server uses for ``engine``'s model."""
        base = self.stream or engine.stream
        unknown = set(self.stream_overrides) - set(base.to_dict())
        if unknown:
            known = ", ".join(base.to_dict())
            raise ConfigError(f"unknown stream settings {sorted(unknown)} (known: {known})")
        try:
            return replace(base, **self.stream_overrides)
        except ValueError as e:
            raise ConfigError(str(e)) from None


@dataclass
class ServerState:
    """What every route needs: the engine, the limits, and the model as served to the page."""

    engine: Engine
    config: ServeConfig
    onnx_bytes: bytes  # the classifier as ONNX, for the in-browser path
    model_info: dict[str, Any]  # GET /v1/model (its labels: the engine's, at each request)
    stream: StreamConfig  # the segmenter's settings, the same in WS /v1/stream and the page
    write_token: str  # what every vocabulary write must send (islr.serving.guard)
    vocabulary_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one change at a time


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's :class:`ServerState`."""
    return request.app.state.islr


def too_large(config: ServeConfig) -> HTTPException:
    return HTTPException(413, f"upload larger than {config.max_upload_mb:g} MB")
