"""/ws/v1/ end to end through the ASGI app, real Redis and the real channel layer.

No test here has database access: pytest-django makes any query from any thread fail, so
every test also proves that a whole WebSocket session runs without SQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from project.asgi import application
from realtime import store
from realtime.clients import async_redis
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.integration.realtime.conftest import ALPHA, BETA, make_token

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


@asynccontextmanager
async def ws(
    token: str | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "/ws/v1/",
    subprotocols: list[str] | None = None,
) -> AsyncIterator[WebsocketCommunicator]:
    if subprotocols is None:
        subprotocols = ["realtime.v1", f"bearer.{token}"] if token else ["realtime.v1"]
    comm = WebsocketCommunicator(
        application,
        path,
        headers=[ORIGIN] if headers is None else headers,
        subprotocols=subprotocols,
    )
    connected, subprotocol = await comm.connect(timeout=3)
    assert connected
    assert subprotocol == "realtime.v1"
    try:
        yield comm
    finally:
        await comm.disconnect()


async def recv(comm: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    return await comm.receive_json_from(timeout)  # type: ignore[no-any-return]


async def subscribe(comm: WebsocketCommunicator, topic: Topic, **extra: Any) -> dict[str, Any]:
    await comm.send_json_to({"type": "subscribe", "topic": str(topic), **extra})
    return await recv(comm)


async def closed_with(comm: WebsocketCommunicator) -> int:
    output = await comm.receive_output(timeout=3)
    assert output["type"] == "websocket.close"
    return int(output["code"])


async def start(topic: Topic, tenant_id: int = ALPHA, owner_id: int = 7) -> None:
    await store.apublish(
        tenant_id, topic, Change(status="PENDING", owner_id=owner_id, job_type="demo")
    )


# --- subscribe, snapshot, stream --------------------------------------------------------------
async def test_subscribe_after_a_publish_gets_the_current_state_at_once(topic: Topic) -> None:
    await start(topic)
    await store.apublish(
        ALPHA, topic, Change(status="PROCESSING", attempt=1, progress=Progress(percent=30))
    )

    async with ws(make_token()) as comm:
        frame = await subscribe(comm, topic)

    assert frame["type"] == "state"
    assert (frame["topic"], frame["seq"], frame["status"]) == (str(topic), 2, "PROCESSING")
    assert frame["progress"]["percent"] == 30


async def test_subscribe_before_publishes_streams_every_change_in_order(topic: Topic) -> None:
    await start(topic)
    async with ws(make_token()) as comm:
        assert (await subscribe(comm, topic))["seq"] == 1

        frames = []
        for change in (
            Change(status="PROCESSING", attempt=1),
            Change(progress=Progress(percent=50, step="send")),
            Change(status="DONE", result={"sent": 2}),
        ):
            await store.apublish(ALPHA, topic, change)
            frames.append(await recv(comm))
        assert await comm.receive_nothing(timeout=0.3)

    assert [f["seq"] for f in frames] == [2, 3, 4]
    assert frames[1]["progress"]["percent"] == 50
    assert frames[-1]["status"] == "DONE"
    assert frames[-1]["progress"] is None
    assert frames[-1]["result"] == {"sent": 2}


async def test_in_a_burst_progress_is_coalesced_but_every_status_change_arrives(
    topic: Topic,
) -> None:
    await start(topic)
    async with ws(make_token()) as comm:
        await subscribe(comm, topic)

        async with async_redis().pipeline(transaction=False) as pipe:  # one burst on the wire
            for change in [
                Change(status="PROCESSING", attempt=1),
                *(Change(progress=Progress(percent=p)) for p in range(1, 31)),
                Change(status="DONE", result={"sent": 30}),
            ]:
                keys, args = store._apply_args(ALPHA, topic, change)
                pipe.evalsha(store._async_script().sha, len(keys), *keys, *args)
            await pipe.execute()
        frames = [await recv(comm)]
        while frames[-1]["status"] != "DONE":
            frames.append(await recv(comm))

    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs))  # strictly increasing
    assert (seqs[0], frames[0]["status"]) == (2, "PROCESSING")  # not coalesced away
    assert (seqs[-1], frames[-1]["status"]) == (33, "DONE")  # the terminal state, always


async def test_a_publish_from_plain_sync_code_reaches_the_consumer(topic: Topic) -> None:
    """What a worker does: the sync client, in another thread, no event loop of its own."""
    await start(topic)
    async with ws(make_token()) as comm:
        await subscribe(comm, topic)

        result = await asyncio.to_thread(
            store.publish, ALPHA, topic, Change(status="PROCESSING", attempt=1)
        )

        frame = await recv(comm)
    assert result.accepted
    assert (frame["seq"], frame["status"]) == (2, "PROCESSING")


async def test_the_layer_wire_format_is_what_consumers_dispatch_on(topic: Topic) -> None:
    """Pins channels-redis's private pub/sub format: an upgrade that changes it fails here."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(store.keyspace().group(ALPHA, topic), channel)

    await start(topic)
    message = await asyncio.wait_for(layer.receive(channel), timeout=3)

    assert message["type"] == "realtime.state"
    assert (message["topic"], message["seq"], message["terminal"]) == (str(topic), 1, False)
    assert json.loads(message["frame"])["type"] == "state"


@pytest.mark.parametrize(("since", "expected"), [(None, "state"), (0, "state"), (1, "subscribed")])
async def test_since_sends_state_only_when_the_client_is_behind(
    topic: Topic, since: int | None, expected: str
) -> None:
    await start(topic)
    async with ws(make_token()) as comm:
        frame = await subscribe(comm, topic, **({} if since is None else {"since": since}))

    assert frame["type"] == expected
    if expected == "subscribed":
        stored = await store.asnapshot(ALPHA, topic)
        assert stored is not None
        assert frame == {"type": "subscribed", "topic": str(topic), "seq": 1, "epoch": stored.epoch}


async def test_two_consumers_on_one_topic_both_get_every_change(topic: Topic) -> None:
    await start(topic)
    async with ws(make_token()) as first, ws(make_token(user_id=8)) as second:
        await subscribe(first, topic)
        await subscribe(second, topic)

        await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))

        assert (await recv(first))["seq"] == 2
        assert (await recv(second))["seq"] == 2


async def test_frames_at_or_below_the_sent_seq_are_dropped(topic: Topic) -> None:
    await start(topic)
    await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
    async with ws(make_token()) as comm:
        current = await subscribe(comm, topic)
        stale = {**current, "seq": 1, "status": "PENDING"}

        for seq in (1, 2):  # a delayed duplicate and a replay of what was sent
            await get_channel_layer().group_send(
                store.keyspace().group(ALPHA, topic),
                {
                    "type": "realtime.state",
                    "topic": str(topic),
                    "seq": seq,
                    "epoch": current["epoch"],
                    "terminal": False,
                    "frame": json.dumps(stale),
                },
            )

        assert await comm.receive_nothing(timeout=0.5)


# --- tenants and authorisation ----------------------------------------------------------------
async def test_another_tenants_topic_does_not_exist_for_the_caller(topic: Topic) -> None:
    await start(topic, tenant_id=ALPHA)
    async with ws(make_token(tenant_id=BETA)) as comm:
        frame = await subscribe(comm, topic)
        await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))

        assert frame == {
            "type": "error",
            "topic": str(topic),
            "code": "not_found",
            "detail": "No such topic.",
        }
        assert await comm.receive_nothing(timeout=0.5)


@pytest.mark.parametrize(
    ("role", "user_id", "visible"),
    [
        ("student", 7, True),  # the owner
        ("student", 8, False),  # another student of the tenant
        ("teacher", 8, False),
        ("staff", 8, True),
        ("admin", 9, True),
    ],
)
async def test_only_staff_admin_and_the_owner_see_a_topic(
    topic: Topic, role: str, user_id: int, visible: bool
) -> None:
    await start(topic, owner_id=7)
    async with ws(make_token(role=role, user_id=user_id)) as comm:
        frame = await subscribe(comm, topic)

    assert frame["type"] == ("state" if visible else "error")


async def test_an_unknown_topic_is_not_found(topic: Topic) -> None:
    async with ws(make_token()) as comm:
        assert (await subscribe(comm, topic))["code"] == "not_found"


# --- authentication and policy ----------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: make_token(lifetime=-5), id="expired"),
        pytest.param(lambda: "not-a-jwt", id="malformed"),
        pytest.param(lambda: make_token()[:-4] + "AAAA", id="bad signature"),
        pytest.param(lambda: None, id="missing"),
    ],
)
async def test_bad_tokens_are_closed_with_4001(token: Any) -> None:
    async with ws(token()) as comm:
        assert await closed_with(comm) == 4001


async def test_the_token_may_come_from_the_query_string(topic: Topic) -> None:
    await start(topic)
    async with ws(path=f"/ws/v1/?token={make_token()}", subprotocols=["realtime.v1"]) as comm:
        assert (await subscribe(comm, topic))["type"] == "state"


async def test_a_foreign_origin_is_closed_with_4003() -> None:
    async with ws(make_token(), headers=[(b"origin", b"https://evil.example")]) as comm:
        assert await closed_with(comm) == 4003


async def test_oversized_frames_close_with_4008(topic: Topic) -> None:
    async with ws(make_token()) as comm:
        await comm.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 5000}))
        assert await closed_with(comm) == 4008


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        "[]",
        '{"type": "dance"}',
        '{"type": "subscribe", "topic": "job:nope"}',
        '{"type": "subscribe", "topic": "job:7c9e6679-7425-40de-944b-e07fc1f90ae7", "since": -1}',
    ],
)
async def test_malformed_frames_get_bad_request_and_the_connection_stays(frame: str) -> None:
    async with ws(make_token()) as comm:
        await comm.send_to(text_data=frame)
        assert (await recv(comm))["code"] == "bad_request"
        await comm.send_json_to({"type": "ping"})
        assert await recv(comm) == {"type": "pong"}


@override_settings(REALTIME_MAX_SUBSCRIPTIONS=2)
async def test_the_subscription_limit_is_enforced() -> None:
    topics = [Topic.job(uuid.uuid4()) for _ in range(3)]
    for topic in topics:
        await start(topic)
    async with ws(make_token()) as comm:
        frames = [await subscribe(comm, topic) for topic in topics]

    assert [f["type"] for f in frames] == ["state", "state", "error"]
    assert frames[-1]["code"] == "too_many_subscriptions"


@override_settings(REALTIME_RATE_PER_SECOND=0.1, REALTIME_RATE_BURST=3)
async def test_flooding_is_rate_limited() -> None:
    async with ws(make_token()) as comm:
        for _ in range(4):
            await comm.send_json_to({"type": "ping"})
        replies = [await recv(comm) for _ in range(4)]

    assert [r["type"] for r in replies] == ["pong", "pong", "pong", "error"]
    assert replies[-1]["code"] == "rate_limited"


async def test_unsubscribe_stops_the_stream(topic: Topic) -> None:
    await start(topic)
    async with ws(make_token()) as comm:
        await subscribe(comm, topic)
        await comm.send_json_to({"type": "unsubscribe", "topic": str(topic)})
        assert await recv(comm) == {"type": "unsubscribed", "topic": str(topic)}

        await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
        assert await comm.receive_nothing(timeout=0.5)


# --- token lifetime ---------------------------------------------------------------------------
@override_settings(REALTIME_TOKEN_WARNING=2)
async def test_token_expiring_then_close_4001_at_expiry() -> None:
    async with ws(make_token(lifetime=2.5)) as comm:
        warning = await recv(comm, timeout=2)
        assert warning["type"] == "token_expiring"
        assert await closed_with(comm) == 4001


@override_settings(REALTIME_TOKEN_WARNING=2)
async def test_a_fresh_token_over_the_socket_keeps_it_open() -> None:
    async with ws(make_token(lifetime=2.5)) as comm:
        assert (await recv(comm, timeout=2))["type"] == "token_expiring"
        fresh = make_token(lifetime=600)

        await comm.send_json_to({"type": "auth", "token": fresh})
        ok = await recv(comm)

        assert ok["type"] == "auth_ok"
        assert ok["expires_at"] > asyncio.get_running_loop().time() or ok["expires_at"] > 0
        assert await comm.receive_nothing(timeout=1.5)  # no close at the old expiry


async def test_a_token_for_another_user_ends_the_connection() -> None:
    async with ws(make_token(user_id=7)) as comm:
        await comm.send_json_to({"type": "auth", "token": make_token(user_id=8)})
        assert await closed_with(comm) == 4001


# --- outages ----------------------------------------------------------------------------------
async def _kill_layer_subscriber() -> int:
    """Drop the channel layer's subscriber connection, as a network blip or failover would."""
    client = async_redis()
    killed = 0
    for entry in await client.client_list(_type="pubsub"):
        if entry.get("name") == LAYER_CLIENT_NAME:
            await client.client_kill_filter(_id=entry["id"])
            killed += 1
    return killed


LAYER_CLIENT_NAME = f"test-layer-{uuid.uuid4().hex[:8]}"


def _named_layer() -> dict[str, Any]:
    from django.conf import settings

    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["hosts"][0]["client_name"] = LAYER_CLIENT_NAME
    return layers


async def test_a_publish_lost_while_the_layer_was_disconnected_is_repaired(topic: Topic) -> None:
    with override_settings(CHANNEL_LAYERS=_named_layer(), REALTIME_RESYNC_INTERVAL=1):
        await start(topic)
        async with ws(make_token()) as comm:
            await subscribe(comm, topic)

            assert await _kill_layer_subscriber() >= 1
            # Published while the subscriber is gone: the layer never delivers this one.
            await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
            await store.apublish(ALPHA, topic, Change(status="DONE", result={"ok": True}))

            frames = [await recv(comm, timeout=4)]
            while frames[-1]["status"] != "DONE":
                frames.append(await recv(comm, timeout=4))
        await get_channel_layer().flush()

    assert [f["seq"] for f in frames] == sorted(
        {f["seq"] for f in frames}
    )  # no dupes, no steps back
    assert frames[-1]["seq"] == 3


async def test_the_watchdog_asks_every_consumer_to_resync_when_beats_go_missing() -> None:
    from realtime.watchdog import LayerWatchdog

    class Listener:
        calls = 0

        def request_resync(self) -> None:
            Listener.calls += 1

    class FakeLayer:  # delivers beats 1, 2, then 5: beats 3 and 4 were lost
        def __init__(self) -> None:
            self.beats = iter([1, 2, 5, 6])

        async def receive(self, channel: str) -> dict[str, Any]:
            try:
                return {"type": "watchdog.beat", "n": next(self.beats)}
            except StopIteration:
                await asyncio.sleep(3600)
                raise

    watchdog = LayerWatchdog()
    listener = Listener()
    watchdog.listeners.add(listener)
    task = asyncio.create_task(watchdog._receive(FakeLayer(), "c"))
    await asyncio.sleep(0.05)
    task.cancel()

    assert (watchdog.gaps, Listener.calls) == (1, 1)
