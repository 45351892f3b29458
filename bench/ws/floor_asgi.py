"""The server's own floor: an ASGI app that accepts, answers a subscribe, and holds the socket.

Served by uvicorn like the design, it shows what a WebSocket connection costs the server and
its protocol implementation before any Channels consumer or layer exists, so the design's
memory per idle connection can be split into "server" and "ours". It delivers nothing: the
benchmark measures its memory only.
"""

from __future__ import annotations

from typing import Any

SUBSCRIBED = '{"type":"subscribed"}'


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            offered = scope.get("subprotocols") or []
            chosen = "realtime.v1" if "realtime.v1" in offered else None
            await send({"type": "websocket.accept", "subprotocol": chosen})
        elif message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": SUBSCRIBED})
        else:
            return
