"""A minimal stock Channels app, the way a typical project writes it (the baselines).

``StockConsumer`` is an ``AsyncJsonWebsocketConsumer``: ``{"type": "subscribe", "topic": t}``
joins the group of the topic and answers ``{"type": "subscribed"}``; every ``group_send``
``{"type": "bench.state", "payload": {...}}`` is forwarded with ``send_json``. No auth, no
de-duplication, no coalescing: stock behaviour. Served by daphne with
``DJANGO_SETTINGS_MODULE=bench.ws.stock_settings``.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.ws.stock_settings")
django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


def group_of(topic: str) -> str:
    """Channels group names allow ``[A-Za-z0-9-_.]``: ``job:<id>`` becomes ``job.<id>``."""
    return topic.replace(":", ".")


class StockConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        self.joined: list[str] = []
        await self.accept()

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content.get("type") == "subscribe" and isinstance(content.get("topic"), str):
            group = group_of(content["topic"])
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
            await self.send_json({"type": "subscribed", "topic": content["topic"]})

    async def bench_state(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/v1/", StockConsumer.as_asgi())]),
    }
)
