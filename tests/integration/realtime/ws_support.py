"""What the hardening and fuzz tests read of a live consumer, its layer and Redis.

Nothing here replaces a part: it looks at the real consumers this event loop runs (the
sweep's registry), the channel layer's group bookkeeping and Redis' own subscriber counts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from project.asgi import application
from realtime import store, watchdog
from realtime.clients import async_redis
from realtime.keys import Topic

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@asynccontextmanager
async def connected(token: str) -> AsyncIterator[WebsocketCommunicator]:
    comm = WebsocketCommunicator(
        application, "/ws/v1/", headers=[ORIGIN], subprotocols=["realtime.v1", f"bearer.{token}"]
    )
    ok, _subprotocol = await comm.connect(timeout=3)
    assert ok
    try:
        yield comm
    finally:
        await comm.disconnect()


def consumers() -> list[Any]:
    """The consumers this event loop registered with its sweep (live or already closed)."""
    sweeper = watchdog._sweepers.get(asyncio.get_running_loop())
    return [] if sweeper is None else list(sweeper.connections)


def subscription_count() -> int:
    """Subscriptions (tenant feeds included) and subscribes in flight held by this loop's
    consumers."""
    return sum(len(c.subs) + len(c._joining) + len(c._feeds) for c in consumers())


def group_members(tenant_id: int, topic: Topic) -> int:
    """Channels the layer (this loop's) counts as members of the topic's group."""
    loop_layer = get_channel_layer()._get_layer()
    return len(loop_layer.groups.get(store.keyspace().group_channel(tenant_id, topic), ()))


def consumer_memberships() -> int:
    """Group memberships of consumers' channels (direct channels) in this loop's layer; the
    watchdog's own channel is not one."""
    loop_layer = get_channel_layer()._get_layer()
    return sum(1 for members in loop_layer.groups.values() for name in members if "direct." in name)


async def redis_subscribers(tenant_id: int, topic: Topic) -> int:
    """Redis' own count of subscribers to the topic's group channel (PUBSUB NUMSUB)."""
    channel = store.keyspace().group_channel(tenant_id, topic)
    [(_name, count)] = await async_redis().pubsub_numsub(channel)
    return int(count)


async def eventually(predicate: Callable[[], Any], timeout: float = 5) -> None:
    """Wait until ``predicate()`` (sync or awaitable) is true; fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.02)


async def next_json(comm: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    """The next server text frame, parsed; fails on a close."""
    output = await comm.receive_output(timeout=timeout)
    assert output["type"] == "websocket.send", output
    frame: dict[str, Any] = json.loads(output["text"])
    return frame


async def pong_or_close(comm: WebsocketCommunicator, timeout: float = 3) -> str:
    """Read until the answer to a ping or a close: ``"pong"`` or ``"close:<code>"``."""
    while True:
        output = await comm.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return f"close:{output.get('code')}"
        if json.loads(output["text"]).get("type") == "pong":
            return "pong"
