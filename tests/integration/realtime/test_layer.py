"""realtime.layer.RealtimeChannelLayer over real Redis: direct receivers and the stock path."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import get_channel_layer

from realtime.clients import async_redis
from realtime.layer import RealtimeChannelLayer
from tests.support.faultproxy import FaultProxy


@pytest.fixture
async def layer() -> AsyncIterator[RealtimeChannelLayer]:
    channel_layer = get_channel_layer()
    assert isinstance(channel_layer, RealtimeChannelLayer)  # what settings configure
    yield channel_layer
    await channel_layer.flush()


async def _member(layer: RealtimeChannelLayer, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def _queued(layer: RealtimeChannelLayer, channel: str) -> list[Any]:
    """What waits in the channel's queue, taken without a ``receive()`` that could be cancelled
    (a cancelled receive unsubscribes the channel, as the stock layer does)."""
    queue: asyncio.Queue[bytes] = layer._get_layer().channels[channel]
    taken = []
    while not queue.empty():
        taken.append(layer.deserialize(queue.get_nowait()))
    return taken


async def _settle() -> None:
    await asyncio.sleep(0.2)  # the layer's receive task reads the published message


def _state(seq: int) -> dict[str, Any]:
    return {"type": "realtime.state", "topic": "job:x", "seq": seq, "terminal": False}


async def test_a_registered_receiver_gets_state_messages_without_its_queue(
    layer: RealtimeChannelLayer,
) -> None:
    # given a group with a member that registered a receiver and a stock member
    group = f"test.{uuid.uuid4().hex}"
    direct, stock = await _member(layer, group), await _member(layer, group)
    got: list[dict[str, Any]] = []
    layer.register_receiver(direct, lambda message: got.append(message) is None)
    try:
        # when a state message is sent to the group
        await layer.group_send(group, _state(1))
        await _settle()

        # then the receiver gets it at once, not queued, and the stock member finds it queued
        assert got == [_state(1)]
        assert await _queued(layer, direct) == []  # handled: not queued as well
        assert await _queued(layer, stock) == [_state(1)]  # no receiver: the stock path
    finally:
        layer.unregister_receiver(direct)


async def test_a_declined_message_and_an_unregistered_channel_take_the_queue(
    layer: RealtimeChannelLayer,
) -> None:
    # given a group member with a receiver that takes only state messages
    group = f"test.{uuid.uuid4().hex}"
    channel = await _member(layer, group)
    seen: list[str] = []

    def receiver(message: dict[str, Any]) -> bool:
        seen.append(message["type"])
        return bool(message["type"] == "realtime.state")

    layer.register_receiver(channel, receiver)

    # when another message type arrives, then a state after the receiver is gone
    await layer.group_send(group, {"type": "watchdog.beat", "n": 1})
    await _settle()
    declined = await _queued(layer, channel)
    layer.unregister_receiver(channel)
    await layer.group_send(group, _state(2))
    await _settle()

    # then the declined message and the later state both went to the queue
    assert seen == ["watchdog.beat"]  # offered, declined; the state came after unregistering
    assert declined == [{"type": "watchdog.beat", "n": 1}]
    assert await _queued(layer, channel) == [_state(2)]


async def test_a_failing_receiver_does_not_starve_the_other_members(
    layer: RealtimeChannelLayer,
) -> None:
    # given a group with a receiver that raises and a healthy one
    group = f"test.{uuid.uuid4().hex}"
    broken, healthy = await _member(layer, group), await _member(layer, group)
    got: list[int] = []

    def explode(message: dict[str, Any]) -> bool:
        raise RuntimeError("boom")

    layer.register_receiver(broken, explode)
    layer.register_receiver(healthy, lambda message: got.append(message["seq"]) is None)
    try:
        # when two state messages are sent
        await layer.group_send(group, _state(3))
        await layer.group_send(group, _state(4))
        await _settle()
    finally:
        layer.unregister_receiver(broken)
        layer.unregister_receiver(healthy)

    # then the healthy one gets both
    assert got == [3, 4]


async def test_a_direct_channel_joins_groups_without_a_subscription_or_queue_of_its_own(
    layer: RealtimeChannelLayer,
) -> None:
    # given a direct channel of the layer
    group = f"test.{uuid.uuid4().hex}"
    channel = layer.new_direct_channel()

    # when/then joining a group before a receiver is registered is refused
    with pytest.raises(RuntimeError, match="no such channel or receiver"):
        await layer.group_add(group, channel)  # a receiver must be registered first

    # when a receiver is registered, it joins and a state is sent
    got: list[int] = []
    layer.register_receiver(channel, lambda message: got.append(message["seq"]) is None)
    try:
        await layer.group_add(group, channel)
        await layer.group_send(group, _state(5))
        await _settle()
        subscribed = await async_redis().pubsub_channels(f"*{channel}*")
    finally:
        layer.unregister_receiver(channel)

    # then the state arrives with only the group's channel subscribed, and no queue
    assert got == [5]
    assert subscribed == []  # only the group's channel is subscribed, not the consumer's
    assert channel not in layer._get_layer().channels


async def test_the_watchdog_outlives_a_layer_redis_that_refuses_it_at_start_and_resyncs_once_in(
    settings: Any,
) -> None:
    # given a channel layer whose Redis refuses every connection (behind a fault proxy), and a
    # watchdog with one listener started on it
    from realtime.watchdog import LayerWatchdog

    redis_port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/", 1)[0])
    with FaultProxy("127.0.0.1", redis_port) as proxy:
        proxy.drop()
        address = settings.REDIS_URL.replace(f":{redis_port}/", f":{proxy.port}/")
        refused = RealtimeChannelLayer(
            hosts=[{"address": address, "socket_timeout": None, "socket_connect_timeout": 0.5}],
            prefix=f"test-watchdog-{uuid.uuid4().hex[:8]}",
        )
        resyncs: list[float] = []

        class Listener:
            def request_resync(self) -> None:
                resyncs.append(asyncio.get_running_loop().time())

        listener = Listener()
        watchdog = LayerWatchdog(interval=0.05, layer=refused)
        watchdog.listeners.add(listener)
        watchdog.start()
        try:
            # when its first subscriptions fail for a while, then Redis answers
            await asyncio.sleep(0.5)
            task = watchdog._task
            assert task is not None
            alive_while_refused = not task.done()
            beats_while_refused = watchdog.beats
            proxy.pass_()
            for _ in range(100):
                if watchdog.beats >= 3:
                    break
                await asyncio.sleep(0.05)

            # then it kept trying, subscribed once Redis answered, receives its beats without a
            # gap, and asked its listener to resync once for what the outage may have hidden
            assert (alive_while_refused, beats_while_refused) == (True, 0)
            assert watchdog.beats >= 3
            assert (watchdog.gaps, len(resyncs)) == (1, 1)
        finally:
            if watchdog._task is not None:
                watchdog._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog._task
            await refused.flush()
