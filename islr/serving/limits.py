"""JSON request bodies read within limits and parsed off the event loop.

A body is refused before it is read when its declared length is over the limit (413), and as soon
as more bytes arrive than the limit allows when it has none (chunked uploads); a body that arrives
slower than the request timeout is a 408. It is parsed and validated by pydantic's JSON parser
(jiter) in a worker thread, so one large body never holds up ``/healthz`` or the streams; jiter
refuses nesting deeper than a few hundred levels and numbers out of range, which become 422s like
any other validation error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

log = logging.getLogger("islr.serving")
Body = TypeVar("Body", bound=BaseModel)


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json`` (any parameters)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def too_large(limit: int, what: str = "the request") -> HTTPException:
    return HTTPException(
        413, f"{what} is larger than this server takes ({limit:,} bytes); send less at a time"
    )


async def read_json_bytes(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body of a JSON request, at most ``limit`` bytes, within ``timeout_s`` seconds.

    415 unless its Content-Type is JSON (a cross-site form or ``text/plain`` POST needs none),
    413 when it is (or declares to be) larger than ``limit``, 408 when it is too slow.
    """
    if not is_json_media_type(request.headers.get("content-type")):
        raise HTTPException(415, "send the body as JSON with 'Content-Type: application/json'")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "invalid Content-Length")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPException(
            408, f"the request body did not arrive within {timeout_s:g} s"
        ) from None
    return b"".join(chunks)


def parse_json_body(model: type[Body], raw: bytes) -> Body:
    """``raw`` JSON -> ``model`` (for a worker thread); a RequestValidationError (422) when it
    is not JSON, too deep, holds a number out of range or does not fit the model."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    except (ValueError, RecursionError) as e:  # jiter raises these for some malformed input
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"invalid JSON: {e}", "type": "json_invalid"}]
        ) from None


def log_disconnect(request: Request, exc: ClientDisconnect) -> None:
    """One line for a client that went away mid-request (no traceback: nothing failed here)."""
    client = request.client
    who = f"{client.host}:{client.port}" if client else "a client"
    log.info("%s disconnected during %s %s", who, request.method, request.url.path)


def http_protocol_with_header_timeout(seconds: float) -> type:
    """uvicorn's HTTP protocol (httptools), closing a connection whose request line and headers
    have not all arrived ``seconds`` after it opened or after its request began; uvicorn itself
    waits for them forever, so a client sending a byte now and then holds a connection."""

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        header_timer: asyncio.TimerHandle | None = None

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self.header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _cancel_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _headers_too_slow(self) -> None:
            self.header_timer = None
            if not self.transport.is_closing():
                log.info(
                    "%s: no complete request headers within %g s; closed", self.client, seconds
                )
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._cancel_header_timer()
            super().on_headers_complete()

    return HeaderTimeoutProtocol
