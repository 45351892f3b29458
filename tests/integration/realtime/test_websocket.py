"""/ws/v1/ end to end through the ASGI app, real Redis and the real channel layer.

No test here has database access: pytest-django makes any query from any thread fail, so
every test also proves that a whole WebSocket session runs without SQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from realtime import store
from realtime.clients import async_redis
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.support.realtime import recv, subscribe, ws
from tests.support.tokens import ALPHA, BETA, make_token


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


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
    # given a job that moved to PROCESSING at 30 %
    await start(topic)
    await store.apublish(
        ALPHA, topic, Change(status="PROCESSING", attempt=1, progress=Progress(percent=30))
    )

    # when a client subscribes
    async with ws(make_token()) as comm:
        frame = await subscribe(comm, topic)

    # then the first frame is the current state
    assert frame["type"] == "state"
    assert (frame["topic"], frame["seq"], frame["status"]) == (str(topic), 2, "PROCESSING")
    assert frame["progress"]["percent"] == 30


async def test_subscribe_before_publishes_streams_every_change_in_order(topic: Topic) -> None:
    # given a PENDING job and a subscribed client
    await start(topic)
    async with ws(make_token()) as comm:
        assert (await subscribe(comm, topic))["seq"] == 1

        # when three changes are published
        frames = []
        for change in (
            Change(status="PROCESSING", attempt=1),
            Change(progress=Progress(percent=50, step="send")),
            Change(status="DONE", result={"sent": 2}),
        ):
            await store.apublish(ALPHA, topic, change)
            frames.append(await recv(comm))
        assert await comm.receive_nothing(timeout=0.3)

    # then each arrives once, in order, and the terminal one clears the progress
    assert [f["seq"] for f in frames] == [2, 3, 4]
    assert frames[1]["progress"]["percent"] == 50
    assert frames[-1]["status"] == "DONE"
    assert frames[-1]["progress"] is None
    assert frames[-1]["result"] == {"sent": 2}


async def test_in_a_burst_progress_is_coalesced_but_every_status_change_arrives(
    topic: Topic,
) -> None:
    # given a PENDING job and a subscribed client
    await start(topic)
    async with ws(make_token()) as comm:
        await subscribe(comm, topic)

        # when a status, 30 progress changes and DONE arrive in one burst
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

    # then seqs only go up, and neither status change is coalesced away
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs))  # strictly increasing
    assert (seqs[0], frames[0]["status"]) == (2, "PROCESSING")  # not coalesced away
    assert (seqs[-1], frames[-1]["status"]) == (33, "DONE")  # the terminal state, always


async def test_a_publish_from_plain_sync_code_reaches_the_consumer(topic: Topic) -> None:
    """What a worker does: the sync client, in another thread, no event loop of its own."""

    # given a PENDING job and a subscribed client
    await start(topic)
    async with ws(make_token()) as comm:
        await subscribe(comm, topic)

        # when a worker's sync code publishes from another thread
        result = await asyncio.to_thread(
            store.publish, ALPHA, topic, Change(status="PROCESSING", attempt=1)
        )

        frame = await recv(comm)

    # then the consumer sends it on
    assert result.accepted
    assert (frame["seq"], frame["status"]) == (2, "PROCESSING")


async def test_the_layer_wire_format_is_what_consumers_dispatch_on(topic: Topic) -> None:
    """Pins channels-redis's private pub/sub format: an upgrade that changes it fails here."""

    # given a raw channel in the topic's group
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(store.keyspace().group(ALPHA, topic), channel)

    # when a job starts
    await start(topic)
    message = await asyncio.wait_for(layer.receive(channel), timeout=3)

    # then the layer message has the fields the consumer dispatches on
    assert message["type"] == "realtime.state"
    assert (message["topic"], message["seq"], message["terminal"]) == (str(topic), 1, False)
    assert json.loads(message["frame"])["type"] == "state"


@pytest.mark.parametrize(("since", "expected"), [(None, "state"), (0, "state"), (1, "subscribed")])
async def test_since_sends_state_only_when_the_client_is_behind(
    topic: Topic, since: int | None, expected: str
) -> None:
    # given a PENDING job at seq 1 and the client's last seq (the parameters)
    await start(topic)

    # when the client subscribes with it
    async with ws(make_token()) as comm:
        frame = await subscribe(comm, topic, **({} if since is None else {"since": since}))

    # then a state comes only when the client is behind
    assert frame["type"] == expected
    if expected == "subscribed":
        stored = await store.asnapshot(ALPHA, topic)
        assert stored is not None
        assert frame == {"type": "subscribed", "topic": str(topic), "seq": 1, "epoch": stored.epoch}


async def test_two_consumers_on_one_topic_both_get_every_change(topic: Topic) -> None:
    # given a PENDING job and two subscribed consumers
    await start(topic)
    async with ws(make_token()) as first, ws(make_token(user_id=8)) as second:
        await subscribe(first, topic)
        await subscribe(second, topic)

        # when a change is published
        await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))

        # then both get it
        assert (await recv(first))["seq"] == 2
        assert (await recv(second))["seq"] == 2


async def test_frames_at_or_below_the_sent_seq_are_dropped(topic: Topic) -> None:
    # given a job at seq 2 and a subscribed client
    await start(topic)
    await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
    async with ws(make_token()) as comm:
        current = await subscribe(comm, topic)
        stale = {**current, "seq": 1, "status": "PENDING"}

        # when the layer delivers a duplicate and a replay at or below seq 2
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

        # then nothing is sent
        assert await comm.receive_nothing(timeout=0.5)


# --- tenants and authorisation ----------------------------------------------------------------
async def test_another_tenants_topic_does_not_exist_for_the_caller(topic: Topic) -> None:
    # given a job of alpha
    await start(topic, tenant_id=ALPHA)

    # when beta's token subscribes to it, and a change is published
    async with ws(make_token(tenant_id=BETA)) as comm:
        frame = await subscribe(comm, topic)
        await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))

        # then the topic does not exist for beta and nothing follows
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
    # given a job owned by user 7 and a caller with the parametrized role
    await start(topic, owner_id=7)

    # when the caller subscribes
    async with ws(make_token(role=role, user_id=user_id)) as comm:
        frame = await subscribe(comm, topic)

    # then only staff, admins and the owner see it
    assert frame["type"] == ("state" if visible else "error")


async def test_an_unknown_topic_is_not_found(topic: Topic) -> None:
    # given a topic nothing was published on
    # when/then subscribing to it is not found
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
    # given a bad or missing token (the parameters)
    # when/then the connection is closed with 4001
    async with ws(token()) as comm:
        assert await closed_with(comm) == 4001


async def test_the_token_may_come_from_the_query_string(topic: Topic) -> None:
    # given a PENDING job and a token in the query string only
    await start(topic)

    # when/then a subscribe gets the state
    async with ws(path=f"/ws/v1/?token={make_token()}", subprotocols=["realtime.v1"]) as comm:
        assert (await subscribe(comm, topic))["type"] == "state"


async def test_a_foreign_origin_is_closed_with_4003() -> None:
    # given a foreign Origin header
    # when/then the connection is closed with 4003
    async with ws(make_token(), headers=[(b"origin", b"https://evil.example")]) as comm:
        assert await closed_with(comm) == 4003


async def test_oversized_frames_close_with_4008(topic: Topic) -> None:
    # given a connected client
    async with ws(make_token()) as comm:
        # when it sends a frame over the size limit
        await comm.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 5000}))

        # then the connection is closed with 4008
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
    # given a connected client
    async with ws(make_token()) as comm:
        # when it sends a malformed frame (the parameters)
        await comm.send_to(text_data=frame)

        # then it gets bad_request and the connection still answers pings
        assert (await recv(comm))["code"] == "bad_request"
        await comm.send_json_to({"type": "ping"})
        assert await recv(comm) == {"type": "pong"}


@override_settings(REALTIME_MAX_SUBSCRIPTIONS=2)
async def test_the_subscription_limit_is_enforced() -> None:
    # given a limit of two subscriptions and three PENDING jobs
    topics = [Topic.job(uuid.uuid4()) for _ in range(3)]
    for topic in topics:
        await start(topic)

    # when the client subscribes to all three
    async with ws(make_token()) as comm:
        frames = [await subscribe(comm, topic) for topic in topics]

    # then the third is refused
    assert [f["type"] for f in frames] == ["state", "state", "error"]
    assert frames[-1]["code"] == "too_many_subscriptions"


@override_settings(REALTIME_RATE_PER_SECOND=0.1, REALTIME_RATE_BURST=3)
async def test_flooding_is_rate_limited() -> None:
    # given a burst of three and a slow refill
    # when four pings arrive at once
    async with ws(make_token()) as comm:
        for _ in range(4):
            await comm.send_json_to({"type": "ping"})
        replies = [await recv(comm) for _ in range(4)]

    # then the fourth is rate limited
    assert [r["type"] for r in replies] == ["pong", "pong", "pong", "error"]
    assert replies[-1]["code"] == "rate_limited"


async def test_unsubscribe_stops_the_stream(topic: Topic) -> None:
    # given a PENDING job and a subscribed client
    await start(topic)
    async with ws(make_token()) as comm:
        await subscribe(comm, topic)

        # when it unsubscribes and a change is published
        await comm.send_json_to({"type": "unsubscribe", "topic": str(topic)})

        # then it is told so and nothing follows
        assert await recv(comm) == {"type": "unsubscribed", "topic": str(topic)}

        await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
        assert await comm.receive_nothing(timeout=0.5)


# --- token lifetime ---------------------------------------------------------------------------
@override_settings(REALTIME_TOKEN_WARNING=2)
async def test_token_expiring_then_close_4001_at_expiry() -> None:
    # given a token that expires in 2.5 s and a warning 2 s before
    # when/then the client is warned, then closed with 4001 at expiry
    async with ws(make_token(lifetime=2.5)) as comm:
        warning = await recv(comm, timeout=2)
        assert warning["type"] == "token_expiring"
        assert await closed_with(comm) == 4001


@override_settings(REALTIME_TOKEN_WARNING=2)
async def test_a_fresh_token_over_the_socket_keeps_it_open() -> None:
    # given a connection warned that its token expires
    async with ws(make_token(lifetime=2.5)) as comm:
        assert (await recv(comm, timeout=2))["type"] == "token_expiring"

        # when a fresh token is sent over the socket
        fresh = make_token(lifetime=600)

        await comm.send_json_to({"type": "auth", "token": fresh})

        # then it is accepted and the connection outlives the old expiry
        ok = await recv(comm)

        assert ok["type"] == "auth_ok"
        assert ok["expires_at"] > asyncio.get_running_loop().time() or ok["expires_at"] > 0
        assert await comm.receive_nothing(timeout=1.5)  # no close at the old expiry


async def test_a_token_for_another_user_ends_the_connection() -> None:
    # given a connection of user 7
    async with ws(make_token(user_id=7)) as comm:
        # when a token of user 8 is sent over the socket
        await comm.send_json_to({"type": "auth", "token": make_token(user_id=8)})

        # then the connection is closed with 4001
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
    # given a named layer with a 1 s resync and a subscribed client
    with override_settings(CHANNEL_LAYERS=_named_layer(), REALTIME_RESYNC_INTERVAL=1):
        await start(topic)
        async with ws(make_token()) as comm:
            await subscribe(comm, topic)

            # when the layer's subscriber is killed and two changes are published meanwhile
            assert await _kill_layer_subscriber() >= 1
            # Published while the subscriber is gone: the layer never delivers this one.
            await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
            await store.apublish(ALPHA, topic, Change(status="DONE", result={"ok": True}))

            frames = [await recv(comm, timeout=4)]
            while frames[-1]["status"] != "DONE":
                frames.append(await recv(comm, timeout=4))
        await get_channel_layer().flush()

    # then the resync delivers them without duplicates or steps back, up to DONE
    assert [f["seq"] for f in frames] == sorted(
        {f["seq"] for f in frames}
    )  # no dupes, no steps back
    assert frames[-1]["seq"] == 3


async def test_the_watchdog_asks_every_consumer_to_resync_when_beats_go_missing() -> None:
    # given a watchdog listener and a layer whose beats 3 and 4 were lost
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

    # when the watchdog receives the beats
    watchdog = LayerWatchdog()
    listener = Listener()
    watchdog.listeners.add(listener)
    task = asyncio.create_task(watchdog._receive(FakeLayer(), "c"))
    await asyncio.sleep(0.05)
    task.cancel()

    # then it sees one gap and asks the listener to resync once
    assert (watchdog.gaps, Listener.calls) == (1, 1)


async def test_a_socket_to_a_path_with_no_endpoint_is_refused_without_an_error() -> None:
    # given the project's ASGI application
    from project.asgi import application

    # when a client opens a WebSocket at a path where none lives
    communicator = WebsocketCommunicator(application, "/ws/nowhere/")
    connected, _ = await communicator.connect()

    # then the handshake is refused (no accept), not failed with an exception
    assert connected is False
    await communicator.wait()
