"""Generated frames against a live consumer (issue 12): whatever a client sends, the consumer
answers, or closes with a policy code, and then lets go of everything it held.

Each example opens a connection through the ASGI app (real Redis, the real channel layer),
subscribes to a real topic, sends a few generated frames (text and binary, nested, huge,
unicode, wrong types), then pings. The connection answers pong or was closed with 4001/4008;
a new connection still gets pong; once closed, no subscription, group membership or Redis
subscription is left. Derandomized and bounded: a few seconds, the same examples every run.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime import store
from realtime.keys import Topic
from realtime.state import Change
from tests.integration.realtime.ws_support import (
    connected,
    consumer_memberships,
    eventually,
    pong_or_close,
    redis_subscribers,
    subscription_count,
)
from tests.support.tokens import ALPHA, make_token

TOPIC_SLOT = "<topic>"  # replaced by the example's real topic

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
wrong_types = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
commands = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "unsubscribe", "auth", "ping", "bogus"]) | wrong_types},
    optional={
        "topic": st.sampled_from(
            [TOPIC_SLOT, TOPIC_SLOT.upper(), "job:", "video:x", "jobs", "videos"]
        )
        | json_values,
        "since": st.integers(-2, 2**60) | wrong_types,
        "epoch": st.integers(-2, 2**60) | wrong_types,
        "token": wrong_types,
    },
)
text_frames = st.one_of(
    commands.map(json.dumps),
    json_values.map(json.dumps),
    st.text(min_size=1, max_size=200),
    st.integers(500, 5000).map(lambda depth: "[" * depth),
    st.integers(200, 900).map(lambda depth: '{"a":' * depth),
    st.integers(4000, 6000).map(lambda size: "\u00e9" * (size // 2)),  # bytes > characters
    st.integers(4090, 4200).map(lambda size: "a" * size),
)
frames = st.one_of(
    text_frames.map(lambda text: ("text", text)),
    st.binary(min_size=1, max_size=6000).map(lambda data: ("bytes", data)),
)


async def _open_topic() -> Topic:
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PROCESSING", owner_id=7, attempt=1))
    return topic


async def _send(comm: Any, frame: tuple[str, Any], topic: Topic) -> None:
    kind, payload = frame
    if kind == "bytes":
        await comm.send_to(bytes_data=payload)
    else:
        await comm.send_to(text_data=payload.replace(TOPIC_SLOT, str(topic)))


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sent=st.lists(frames, min_size=1, max_size=5))
async def test_any_frames_leave_a_healthy_consumer_and_no_subscription(
    sent: list[tuple[str, Any]],
) -> None:
    # given
    topic = await _open_topic()
    async with connected(make_token()) as comm:
        await comm.send_json_to({"type": "subscribe", "topic": str(topic)})

        # when
        for frame in sent:
            await _send(comm, frame, topic)
        await comm.send_json_to({"type": "ping"})
        answer = await pong_or_close(comm)

    # then
    assert answer in {"pong", "close:4001", "close:4008"}
    async with connected(make_token()) as fresh:
        await fresh.send_json_to({"type": "ping"})
        assert await pong_or_close(fresh) == "pong"
    await eventually(lambda: subscription_count() == 0 and consumer_memberships() == 0)
    await eventually(lambda: _unsubscribed(topic))


async def _unsubscribed(topic: Topic) -> bool:
    return await redis_subscribers(ALPHA, topic) == 0
