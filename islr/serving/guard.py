"""Requests only for this server, writes and streams only from its own page.

A browser sends any page's requests to a server on the user's machine, so without checks a page
on another site could add signs to the vocabulary (a ``text/plain`` POST needs no preflight), open
the stream, or, through a DNS name that resolves to 127.0.0.1 (DNS rebinding), read the API. So:

- ``Host`` must be an IP address, ``localhost`` (or ``*.localhost``), or a name the server was
  told about (``--host``, ``--allow-origin``): a rebound DNS name is refused (421 / 403);
- a request that changes something (any method but GET, HEAD, OPTIONS) and every WebSocket must
  come from no browser page (no ``Origin``: curl, scripts) or from the server's own origin (the
  ``Host`` it was reached at, or a loopback name with the same port) or an ``--allow-origin``
  value; else 403 (a WebSocket is closed with 1008 before it opens);
- writes to the vocabulary also need the process's write token (:func:`require_write_token`),
  which the served page receives in its HTML and API clients read from ``islr serve``'s startup
  line (or set with ``--token``). A page on another origin cannot read either.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

log = logging.getLogger("islr.serving")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_HEADER = "authorization"  # "Bearer TOKEN"


def new_write_token() -> str:
    """A fresh random write token (one per server process)."""
    return secrets.token_urlsafe(24)


def split_host(netloc: str) -> tuple[str, str]:
    """``"host:port"`` / ``"[::1]:8000"`` -> (``"host"``, ``"port"`` or ``""``), lowercased."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalise_origin(origin: str) -> str:
    """``"http://Example.com:8000/"`` -> ``"http://example.com:8000"`` (scheme://netloc)."""
    parts = urlsplit(origin.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class OriginPolicy:
    """Which ``Host`` headers and ``Origin`` s this server accepts (see the module docstring)."""

    def __init__(self, allow_origins: Iterable[str] = (), allow_hosts: Iterable[str] = ()):
        self.allow_origins = {normalise_origin(o) for o in allow_origins if o}
        self.allow_hosts = {h.lower().strip("[]") for h in allow_hosts if h}
        self.allow_hosts |= {split_host(urlsplit(o).netloc)[0] for o in self.allow_origins}

    def host_allowed(self, host_header: str | None) -> bool:
        # No Host at all (HTTP/1.0) never comes from a browser; an IP address cannot be rebound.
        if not host_header:
            return True
        host, _ = split_host(host_header)
        return (
            _is_ip(host)
            or host == "localhost"
            or host.endswith(".localhost")
            or host in self.allow_hosts
        )

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        if origin is None:
            return True  # not a browser page: curl, scripts, the Python client
        origin = normalise_origin(origin)
        if origin in self.allow_origins:
            return True
        netloc = urlsplit(origin).netloc
        if not netloc or not host_header:
            return False  # "null" (sandboxed frames, file://)
        if netloc == host_header.lower():
            return True  # the page this server served
        origin_host, origin_port = split_host(netloc)
        host, port = split_host(host_header)
        # the same server under another loopback name (page on localhost, API on 127.0.0.1)
        return origin_host in LOOPBACK_NAMES and host in LOOPBACK_NAMES and origin_port == port


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


class OriginGuard:
    """ASGI middleware enforcing an :class:`OriginPolicy` on every request and WebSocket."""

    def __init__(self, app: Callable[..., Awaitable[None]], policy: OriginPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host, origin = headers.get("host"), headers.get("origin")
        refusal = None
        if not self.policy.host_allowed(host):
            refusal = (
                f"Host {host!r} is not this server's: use http://127.0.0.1 or localhost, or start "
                "it with --allow-origin for the address you use"
            )
        elif (
            scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        ) and not self.policy.origin_allowed(origin, host):
            refusal = (
                f"requests from the page at {origin} are refused: only this server's own page "
                "may change things or stream (islr serve --allow-origin ORIGIN allows another)"
            )
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning("refused %s %s: %s", scope.get("method", "WS"), scope.get("path"), refusal)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "origin refused"})
            return
        body = json.dumps({"detail": refusal}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def require_write_token(request: Request) -> None:
    """FastAPI dependency of every write: ``Authorization: Bearer TOKEN`` with this process's
    write token, else 401."""
    expected: str = request.app.state.islr.write_token
    scheme, _, given = request.headers.get(TOKEN_HEADER, "").partition(" ")
    given_bytes = given.strip().encode("latin-1", "replace")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given_bytes, expected.encode()):
        raise HTTPException(
            401,
            "a write needs this server's write token: send 'Authorization: Bearer TOKEN' with "
            "the token that islr serve printed at startup (the web page sends it itself)",
            headers={"WWW-Authenticate": "Bearer"},
        )
