"""Hostile frames and every way out of a consumer (issue 12, audit F6, F8, F16, F17).

Through the ASGI app with real Redis and the real channel layer; a test named after an audit
finding fails on the code before its fix.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from project.asgi import application
from realtime import store
from realtime.clients import async_redis
from realtime.keys import Topic
from realtime.state import Change
from tests.integration.realtime.ws_support import (
    ORIGIN,
    connected,
    eventually,
    group_members,
    next_json,
    redis_subscribers,
    subscription_count,
)
from tests.support.tokens import ALPHA, BETA, make_token


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


async def _processing(topic: Topic, tenant_id: int = ALPHA) -> None:
    await store.apublish(tenant_id, topic, Change(status="PROCESSING", owner_id=7, attempt=1))


async def _subscribe(comm: Any, topic: Topic) -> dict[str, Any]:
    await comm.send_json_to({"type": "subscribe", "topic": str(topic)})
    return await next_json(comm)


def bearer() -> str:
    return f"bearer.{make_token()}"


async def _released(topic: Topic) -> bool:
    return group_members(ALPHA, topic) == 0 and await redis_subscribers(ALPHA, topic) == 0


# --- F6: a frame that raises ------------------------------------------------------------------
@pytest.mark.parametrize("text", ["[" * 4000, '{"a":[' * 680])
async def test_F6_a_deeply_nested_frame_gets_bad_request_and_the_consumer_lives_on(
    topic: Topic, text: str
) -> None:
    # given
    await _processing(topic)
    async with connected(make_token()) as comm:
        assert (await _subscribe(comm, topic))["type"] == "state"

        # when
        await comm.send_to(text_data=text)
        answer = await next_json(comm)
        await comm.send_json_to({"type": "ping"})
        pong = await next_json(comm)

    # then
    assert (answer["type"], answer["code"]) == ("error", "bad_request")
    assert pong["type"] == "pong"
    await eventually(lambda: _released(topic))


async def test_F6_a_consumer_cancelled_mid_connection_leaves_its_groups(topic: Topic) -> None:
    # given
    await _processing(topic)
    comm = WebsocketCommunicator(
        application, "/ws/v1/", headers=[ORIGIN], subprotocols=["realtime.v1", bearer()]
    )
    assert (await comm.connect(timeout=3))[0]
    assert (await _subscribe(comm, topic))["type"] == "state"
    assert group_members(ALPHA, topic) == 1

    # when: the server cancels the application (as at shutdown), with no disconnect event
    comm.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await comm.future

    # then
    await eventually(lambda: _released(topic))
    assert subscription_count() == 0


# --- F8: binary frames ------------------------------------------------------------------------
async def test_F8_a_binary_frame_over_the_size_limit_is_closed_with_4008() -> None:
    # given
    async with connected(make_token()) as comm:
        # when
        await comm.send_to(bytes_data=b"\x00" * 5000)
        output = await comm.receive_output(timeout=3)

    # then
    assert (output["type"], output["code"]) == ("websocket.close", 4008)


async def test_F8_binary_frames_count_against_the_rate_limit() -> None:
    # given
    with override_settings(REALTIME_RATE_PER_SECOND=0.001, REALTIME_RATE_BURST=2):
        async with connected(make_token()) as comm:
            # when
            for _ in range(3):
                await comm.send_to(bytes_data=b"{}")
            codes = [(await next_json(comm))["code"] for _ in range(3)]

    # then
    assert codes == ["bad_request", "bad_request", "rate_limited"]


async def test_F8_flooding_with_binary_frames_is_closed_with_4008() -> None:
    # given
    with override_settings(REALTIME_RATE_PER_SECOND=0.001, REALTIME_RATE_BURST=1):
        async with connected(make_token()) as comm:
            # when
            for _ in range(60):
                await comm.send_to(bytes_data=b"x")
            outputs = []
            while not outputs or outputs[-1]["type"] != "websocket.close":
                outputs.append(await comm.receive_output(timeout=3))

    # then
    assert outputs[-1]["code"] == 4008


# --- F16: a state published while the subscribe reads the snapshot ------------------------------
@pytest.fixture
def publish_during_snapshot(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the next subscribe's snapshot read be followed by publishes, delivered by the real
    layer before the consumer gets the snapshot back: the interleaving of audit F16."""
    real_snapshot = store.asnapshot

    def arm(*publishes: tuple[int, Topic, Change]) -> None:
        async def snapshot_then_publish(tenant_id: int, topic: Topic) -> Any:
            monkeypatch.setattr(store, "asnapshot", real_snapshot)  # once
            snap = await real_snapshot(tenant_id, topic)
            for publish_tenant, publish_topic, change in publishes:
                channel = store.keyspace().group_channel(publish_tenant, publish_topic)
                listener = async_redis().pubsub(ignore_subscribe_messages=True)
                await listener.subscribe(channel)
                await store.apublish(publish_tenant, publish_topic, change)
                async with asyncio.timeout(3):  # Redis has sent it to every subscriber
                    while await listener.get_message(timeout=0.1) is None:
                        pass
                await listener.aclose()
            await asyncio.sleep(0.2)  # the layer's reader hands it to the consumer meanwhile
            return snap

        monkeypatch.setattr(store, "asnapshot", snapshot_then_publish)

    return arm


@override_settings(REALTIME_RESYNC_INTERVAL=600)  # no sweep repairs it during the test
async def test_F16_a_state_published_during_the_snapshot_read_is_delivered(
    topic: Topic, publish_during_snapshot: Any
) -> None:
    # given
    await _processing(topic)
    publish_during_snapshot((ALPHA, topic, Change(status="DONE", result={"ok": True})))
    async with connected(make_token()) as comm:
        # when
        first = await _subscribe(comm, topic)
        second = await next_json(comm)

    # then
    assert (first["status"], first["seq"]) == ("PROCESSING", 1)
    assert (second["status"], second["seq"]) == ("DONE", 2)


@override_settings(REALTIME_RESYNC_INTERVAL=600)
async def test_F16_the_gap_buffer_takes_nothing_from_another_tenants_topic(
    topic: Topic, publish_during_snapshot: Any
) -> None:
    # given: the same topic id in tenant BETA changes while ALPHA's subscribe reads
    await _processing(topic)
    await _processing(topic, tenant_id=BETA)
    publish_during_snapshot((BETA, topic, Change(status="DONE", result={"beta": True})))
    async with connected(make_token()) as comm:
        # when
        first = await _subscribe(comm, topic)
        await comm.send_json_to({"type": "ping"})
        after = await next_json(comm)

    # then: ALPHA's state, then the pong; BETA's DONE never arrives
    assert (first["status"], first["seq"]) == ("PROCESSING", 1)
    assert after["type"] == "pong"


# --- F17: re-subscribing to a topic that vanished ------------------------------------------------
async def test_F17_resubscribing_to_a_vanished_topic_leaves_its_group(topic: Topic) -> None:
    # given
    await _processing(topic)
    redis = async_redis()
    async with connected(make_token()) as comm:
        assert (await _subscribe(comm, topic))["type"] == "state"
        await redis.delete(
            store.keyspace().status_key(ALPHA, topic), store.keyspace().progress_key(ALPHA, topic)
        )

        # when
        answer = await _subscribe(comm, topic)

        # then: while still connected, nothing of the subscription is left
        assert (answer["type"], answer["code"]) == ("error", "not_found")
        await eventually(lambda: _released(topic))
        assert subscription_count() == 0


async def test_a_frame_that_is_not_an_object_in_any_shape_gets_bad_request() -> None:
    # given
    frames = ["null", "[]", '"subscribe"', "1e999999", "\ud800", json.dumps({"type": 1})]
    async with connected(make_token()) as comm:
        # when
        codes = []
        for text in frames:
            await comm.send_to(text_data=text)
            codes.append((await next_json(comm))["code"])

    # then
    assert codes == ["bad_request"] * len(frames)
