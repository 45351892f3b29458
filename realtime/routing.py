"""The WebSocket routes: ``/ws/v1/``, and a refusal for every other path.

Without the catch-all, Channels' router raises ``ValueError("No route found…")`` for an unknown
path: the server logs a traceback and answers ``500`` to a request that is only a wrong URL.
"""

from __future__ import annotations

import logging
from typing import Any

from django.urls import path, re_path

from realtime.consumers import RealtimeConsumer

logger = logging.getLogger(__name__)


async def no_such_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Refuse the handshake (the server answers ``403``): no WebSocket lives at this path."""
    message = await receive()
    if message["type"] == "websocket.connect":
        logger.info("websocket refused: no endpoint at %s", scope.get("path", "?"))
        await send({"type": "websocket.close", "code": 1008})


websocket_urlpatterns = [
    path("ws/v1/", RealtimeConsumer.as_asgi()),
    re_path(r"", no_such_endpoint),  # type: ignore[arg-type]  # an ASGI app, as Channels routes take
]
