"""``/ws/v1/`` as one ASGI callable: the handshake checks, the connection slot and the consumer.

Stock wiring puts four layers between the server and the consumer: Channels'
``ProtocolTypeRouter``, :class:`realtime.auth.TokenAuthMiddleware`, ``URLRouter`` and the
``as_asgi`` wrapper. Each stays suspended in a coroutine frame for the whole life of the
connection, and two of them copy the scope. With thousands of idle sockets per process that
is memory per connection for nothing (bench/ws/RESULTS.md). This callable does what they do
for ``/ws/v1/``, in the same order and with the same code (origin and token checks in
:func:`realtime.auth.authenticate_handshake`, the per-user cap in ``realtime.connections``,
the refusal with 4008 ``too_many_connections``), then runs the consumer's loop in its own
frame (one suspended coroutine per connection, as a bare ASGI app has) and hands the consumer
the handshake's outcome directly instead of in a copied scope.

Anything else (HTTP, another WebSocket path, a ``root_path`` deployment) goes to the stock
chain it wraps, unchanged.

With the server's GC tuning on (``ASGI_GC_TUNING``: the young generation is collected only
every 50,000 allocations), the garbage cycles a burst of handshakes leaves behind would wait
for the next collection, and an idle server allocates next to nothing. So one second after the
first opening of a burst the young generation is collected once: one collection per burst,
not one per opening (``_collect_after_burst``).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from realtime import connections, metrics
from realtime.auth import REASON_TOO_MANY_CONNECTIONS, authenticate_handshake, refuse
from realtime.consumers import RealtimeConsumer
from realtime.layer import RealtimeChannelLayer
from realtime.protocol import CLOSE_POLICY

PATH = "/ws/v1/"
# Seconds from the first opening of a burst to its young-generation collection.
BURST_GC_DELAY = 1.0

_gc_pending: set[asyncio.AbstractEventLoop] = set()


def _collect_young(loop: asyncio.AbstractEventLoop) -> None:
    _gc_pending.discard(loop)
    gc.collect(0)


def _collect_after_burst() -> None:
    """Collect the young generation ``BURST_GC_DELAY`` after this opening, unless a
    collection is already due: the openings of one burst share it."""
    if not settings.ASGI_GC_TUNING:
        return
    loop = asyncio.get_running_loop()
    if loop not in _gc_pending:
        _gc_pending.add(loop)
        loop.call_later(BURST_GC_DELAY, _collect_young, loop)


class RealtimeEndpoint:
    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback  # the stock chain: everything that is not /ws/v1/

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket" or scope.get("path") != PATH or scope.get("root_path"):
            await self.fallback(scope, receive, send)
            return
        metrics.connection_opened()
        _collect_after_burst()
        slot = None
        try:
            auth = authenticate_handshake(scope)
            if auth.caller is not None:
                slot = await connections.acquire(auth.caller.tenant_id, auth.caller.user_id)
                if slot is None:
                    await refuse(receive, send, auth.subprotocol, REASON_TOO_MANY_CONNECTIONS)
                    metrics.connection_closed(CLOSE_POLICY)
                    return
            consumer = RealtimeConsumer()
            consumer.handshake = auth
            layer = get_channel_layer(consumer.channel_layer_alias)
            if not isinstance(layer, RealtimeChannelLayer):
                await consumer(scope, receive, send)  # another layer: the consumer's stock loop
                return
            # RealtimeConsumer.__call__'s loop, run here rather than in a frame of its own.
            consumer.attach(scope, send, layer)
            try:
                while True:
                    await consumer.dispatch(await receive())
            except StopConsumer:
                pass
            finally:
                await consumer.release()
        finally:
            if slot is not None:
                await connections.release(slot)
            metrics.connection_ended()
