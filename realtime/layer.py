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

This subclasses channels-redis internals (``RedisPubSubLoopLayer``,
``RedisSingleShardConnection._receive_message``); the dependency is pinned to a minor version
for that reason and tests/integration/realtime/test_layer.py pins the behaviour.
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
    def __init__(self, hosts: Any = None, **kwargs: Any) -> None:
        super().__init__(hosts, **kwargs)
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]

    async def group_add(self, group: str, channel: str) -> None:
        if channel in self.channels:
            await super().group_add(group, channel)
            return
        if channel not in self.channel_layer.receivers:
            raise RuntimeError(
                f"group_add({group!r}, {channel!r}): no such channel or receiver in this process"
            )
        # A direct channel (RealtimeChannelLayer.new_direct_channel): the stock bookkeeping
        # without the check that the channel has a queue.
        group_channel = self._get_group_channel_name(group)
        self.groups.setdefault(group_channel, set()).add(channel)
        await self._get_shard(group_channel).subscribe(group_channel)


class _Shard(RedisSingleShardConnection):
    def _receive_message(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        name = message["channel"]
        data = message["data"]
        if isinstance(name, bytes):
            name = name.decode()
        layer = self.channel_layer  # the loop layer
        queue = layer.channels.get(name)
        if queue is not None:
            queue.put_nowait(data)
            return
        members = layer.groups.get(name)
        if not members:
            return
        receivers: dict[str, Receiver] = layer.channel_layer.receivers
        decoded: dict[str, Any] | None = None
        for channel in tuple(members):
            receiver = receivers.get(channel)
            if receiver is not None:
                if decoded is None:
                    decoded = layer.channel_layer.deserialize(data)
                try:
                    if receiver(decoded):
                        continue
                except Exception:  # one broken receiver must not starve the others
                    logger.exception("direct receiver failed channel=%s", channel)
                    continue
            member_queue = layer.channels.get(channel)
            if member_queue is not None:
                member_queue.put_nowait(data)
