"""The channel layer: channels-redis' ``RedisPubSubChannelLayer`` with direct state delivery.

Stock, a group message travels: the layer's receive task puts the raw bytes on each member's
``asyncio.Queue``; Channels' ``await_many_dispatch`` wakes the consumer's task, which decodes
its own copy (msgpack), builds a task and an ``asyncio.wait`` for the next message, and
dispatches to the handler. Per delivered frame that is several task switches and one decode
per member, which the fan-out benchmark profiled as most of the server's CPU after the socket
write itself (bench/ws/RESULTS.md).

Here, a consumer registers a synchronous receiver for its channel. When a group message
arrives, the layer decodes it once and hands it to each member's receiver on the spot; the
receiver (``RealtimeConsumer.deliver_state``) only files the frame into the connection's
coalescing buffer, which its sender task drains. A receiver that declines a message (any type
other than ``realtime.state``) and every channel without a receiver get the stock path, so the
watchdog's beats and anything else on the layer behave exactly as before.

Subscriptions go through :class:`realtime.subscriber.Subscriber` rather than redis-py's
``PubSub`` and channels-redis' reader task (ADR 0019): every message of one socket read reaches
:meth:`_LoopLayer.dispatch` in one call, each Redis channel is subscribed once however many
members its group has, and a lost connection is replaced and resubscribed by the subscriber.
Publishing stays channels-redis' (redis-py). A group of one member, the usual case (a
connection watching its own job), is kept as a 1-tuple rather than a set.

This subclasses channels-redis internals (``RedisPubSubLoopLayer``,
``RedisSingleShardConnection``); the dependency is pinned to a minor version for that reason and
tests/integration/realtime/test_layer.py and test_subscriber.py pin the behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close, decode_hosts

from realtime.resp import Endpoint
from realtime.subscriber import Subscriber

logger = logging.getLogger(__name__)

# Takes a decoded layer message; True when it handled it (the member's queue is then skipped).
Receiver = Callable[[dict[str, Any]], bool]


class RealtimeChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Channel names are unique per consumer (uuid), so one map serves every event loop.
        self.receivers: dict[str, Receiver] = {}

    def register_receiver(self, channel: str, receiver: Receiver) -> None:
        self.receivers[channel] = receiver

    def unregister_receiver(self, channel: str) -> None:
        self.receivers.pop(channel, None)

    def new_direct_channel(self) -> str:
        """A channel name for a consumer that takes layer messages only through its receiver:
        no Redis subscription and no queue. It may join groups once its receiver is registered;
        group messages its receiver declines are dropped (nothing would read them)."""
        return f"{self._kwargs.get('prefix', 'asgi')}direct.{uuid.uuid4().hex}"

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer


class _LoopLayer(RedisPubSubLoopLayer):
    """The layer of one event loop. ``groups`` maps a group's Redis channel to its members: a
    1-tuple for the usual group of one (a connection watching its own job), a set past that."""

    groups: dict[str, tuple[str] | set[str]]

    def __init__(self, hosts: Any = None, **kwargs: Any) -> None:
        super().__init__(hosts, **kwargs)
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]

    async def group_add(self, group: str, channel: str) -> None:
        if channel not in self.channels and channel not in self.channel_layer.receivers:
            raise RuntimeError(
                f"group_add({group!r}, {channel!r}): no such channel or receiver in this process"
            )
        group_channel = self._get_group_channel_name(group)
        members = self.groups.get(group_channel)
        if members is None:
            self.groups[group_channel] = (channel,)
        elif channel not in members:
            self.groups[group_channel] = {*members, channel}
        # Subscribed once per channel, whoever joins: the subscriber knows what it holds.
        await self._get_shard(group_channel).subscribe(group_channel)

    async def group_discard(self, group: str, channel: str) -> None:
        group_channel = self._get_group_channel_name(group)
        members = self.groups.get(group_channel)
        if members is None or channel not in members:
            return
        if isinstance(members, set) and len(members) > 1:
            members.discard(channel)
            if len(members) == 1:
                self.groups[group_channel] = (next(iter(members)),)
            return
        del self.groups[group_channel]
        await self._get_shard(group_channel).unsubscribe(group_channel)

    def dispatch(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Every message of one socket read (realtime.subscriber), delivered in one go."""
        channels = self.channels
        groups = self.groups
        receivers: dict[str, Receiver] = self.channel_layer.receivers
        deserialize = self.channel_layer.deserialize
        for raw_name, data in batch:
            name = raw_name.decode()
            queue = channels.get(name)
            if queue is not None:
                queue.put_nowait(data)
                continue
            members = groups.get(name)
            if not members:
                continue
            decoded: dict[str, Any] | None = None
            # A receiver only files a frame; it cannot change the groups. A set is copied all
            # the same, as any iteration over a mutable set from a callback should be.
            for channel in members if type(members) is tuple else tuple(members):
                receiver = receivers.get(channel)
                if receiver is not None:
                    if decoded is None:
                        decoded = deserialize(data)
                    try:
                        if receiver(decoded):
                            continue
                    except Exception:  # one broken receiver must not starve the others
                        logger.exception("direct receiver failed channel=%s", channel)
                        continue
                member_queue = channels.get(channel)
                if member_queue is not None:
                    member_queue.put_nowait(data)


class _Shard(RedisSingleShardConnection):
    """Publishes through redis-py as channels-redis does; subscribes through
    :class:`realtime.subscriber.Subscriber` instead of redis-py's ``PubSub`` and its reader task."""

    def __init__(self, host: dict[str, Any], channel_layer: _LoopLayer) -> None:
        super().__init__(host, channel_layer)
        if "address" not in host:
            # Sentinel and (host, port) entries have no URL to read TLS and AUTH from; this
            # project configures an address, so anything else is a mistake, not a fallback.
            raise ValueError("RealtimeChannelLayer hosts need an 'address' (a redis URL)")
        self.subscriber = Subscriber(
            Endpoint.from_url(
                host["address"],
                connect_timeout=host.get("socket_connect_timeout", 5.0),
                health_check_interval=float(host.get("health_check_interval") or 0),
                client_name=host.get("client_name"),
            ),
            channel_layer.dispatch,
        )

    async def subscribe(self, channel: str) -> None:
        await self.subscriber.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self.subscriber.unsubscribe(channel)

    async def flush(self) -> None:
        await self.subscriber.close()
        await super().flush()
