"""The server's settings and the one state object its routers share (``app.state.islr``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request

from islr.inference import Engine, StreamConfig


@dataclass
class ServeConfig:
    """Limits and settings of the server."""

    max_upload_mb: float = 50.0
    max_frames: int = 1000
    max_stream_errors: int = 100  # bad WebSocket messages answered before the socket is closed
    threads: int | None = None  # intra-op threads of the classifier
    stream: StreamConfig = field(default_factory=StreamConfig)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass
class ServerState:
    """What every route needs: the engine, the limits, and the model as served to the page."""

    engine: Engine
    config: ServeConfig
    onnx_bytes: bytes  # the classifier as ONNX, for the in-browser path
    model_info: dict[str, Any]  # GET /v1/model


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's :class:`ServerState`."""
    return request.app.state.islr


def too_large(config: ServeConfig) -> HTTPException:
    return HTTPException(413, f"upload larger than {config.max_upload_mb:g} MB")
