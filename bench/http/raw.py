"""The ceiling for the progress endpoint: a raw ASGI JSON app, no Django in its process.

    uvicorn bench.http.raw:app      # BENCH_RAW_JWT_KEY=<the signing key>

It does what the progress endpoint does minus Django and Redis: read ``Authorization``, verify
the bearer token with the project's own Django-free check (``realtime.tokens``, the function
``realtime.auth.caller_from_access_token`` calls, same key and algorithm), answer 401 when it
fails, else a constant state document of the progress endpoint's shape (``NOOP_DOCUMENT``, the
no-op view's) with ``Content-Type``, ``Content-Length`` and ``Cache-Control``. Any path.

``python -m bench.http.run`` starts it under uvicorn with the same options as the project's
server, in its own process, and loads it in the same rounds as the real endpoint. The process
must not import Django: it refuses to start if anything did.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bench.http.document import NOOP_DOCUMENT
from realtime.identity import InvalidClaims
from realtime.tokens import AccessTokenVerifier

UNAUTHENTICATED = b'{"code":"not_authenticated","detail":"A valid access token is required."}'

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_verifier = AccessTokenVerifier(os.environ.get("BENCH_RAW_JWT_KEY", ""), algorithm="HS256")


def _headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/health/":  # what the runner waits for
        await send({"type": "http.response.start", "status": 200, "headers": _headers(b"ok")})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    authorization = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
            break
    scheme, _sep, token = authorization.decode("latin-1").partition(" ")
    status, body = 401, UNAUTHENTICATED
    if scheme == "Bearer" and token:
        try:
            _verifier.caller(token.strip())
            status, body = 200, NOOP_DOCUMENT
        except InvalidClaims:
            pass
    await send({"type": "http.response.start", "status": status, "headers": _headers(body)})
    await send({"type": "http.response.body", "body": body})


if "django" in sys.modules:  # pragma: no cover - a guard for the benchmark's premise
    raise RuntimeError("bench.http.raw must run without Django")
