"""``GET /metrics``: the Prometheus exposition of this host's processes, for internal scrapers.

Answered in front of Django (an ASGI wrapper, like the progress fast path), and only when

- ``METRICS_ENABLED`` is on (default), and
- the peer address is in ``METRICS_ALLOWED_NETWORKS`` (default: loopback only, that is the
  host's own agent; the production unit binds the servers to 127.0.0.1), and
- the request did not come through the public proxy (no ``X-Forwarded-For``; the shipped nginx
  configuration answers 404 for ``/metrics`` as well), and
- when ``METRICS_TOKEN`` is set, it carries ``Authorization: Bearer <METRICS_TOKEN>``.

Anything else is a 404, the same as a path that does not exist: a scraper that is not let in
learns nothing. The body merges every process of the host (``PROMETHEUS_MULTIPROC_DIR``,
realtime/prometheus.py); it is read on a thread, since it reads one file per process.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from typing import Any

from django.conf import settings

from realtime import prometheus

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/metrics"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _networks(allowed: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(net, strict=False) for net in allowed)


def scrape_allowed(scope: Scope) -> bool:
    """Whether this request may read the metrics (see the module doc)."""
    if not settings.METRICS_ENABLED:
        return False
    headers = {name.lower(): value for name, value in scope.get("headers", ())}
    if b"x-forwarded-for" in headers:
        return False
    client = scope.get("client")
    try:
        address = ipaddress.ip_address(client[0]) if client else None
    except ValueError:
        address = None  # a unix socket peer, or something uvicorn could not parse
    if address is None or not any(
        address in net for net in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    ):
        return False
    token = settings.METRICS_TOKEN
    if token:
        given = headers.get(b"authorization", b"")
        return hmac.compare_digest(given, b"Bearer " + token.encode())
    return True


class MetricsEndpoint:
    """Wraps the HTTP app; serves ``GET /metrics`` to allowed scrapers, 404 to anyone else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET" or not scrape_allowed(scope):
            await _send(send, 404, b"Not found.\n", b"text/plain; charset=utf-8")
            return
        prometheus.flush()  # this process's tallies, on the loop that owns them
        body = await asyncio.to_thread(prometheus.exposition)
        await _send(send, 200, body, prometheus.CONTENT_TYPE.encode())


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
