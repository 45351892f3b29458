"""The tenant feeds ``jobs`` and ``videos`` (PROTOCOL.md §1, §4) through the ASGI app, the real
channel layer and Redis: who may watch them, what they carry, and that they never cross tenants.

No test here has database access: a whole feed session runs without SQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from realtime import feeds, protocol, store, watchdog
from realtime.clients import async_redis
from realtime.keys import Feed, Topic
from realtime.state import Change, Progress
from tests.support.realtime import ask, recv, ws
from tests.support.tokens import ALPHA, BETA, make_token

OWNER = 7


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


async def _watch(comm: WebsocketCommunicator, feed: str) -> dict[str, Any]:
    return await ask(comm, {"type": "subscribe", "topic": feed})


async def _states(comm: WebsocketCommunicator, count: int, within: float = 5) -> list[Any]:
    frames = [await recv(comm, within) for _ in range(count)]
    assert all(f["type"] == "state" for f in frames), frames
    return frames


async def _job_lifecycle(tenant_id: int, topic: Topic, *, owner_id: int = OWNER) -> None:
    await store.apublish(
        tenant_id, topic, Change(status="PENDING", owner_id=owner_id, job_type="t")
    )
    await store.apublish(tenant_id, topic, Change(status="PROCESSING", attempt=1))
    await store.apublish(tenant_id, topic, Change(progress=Progress(percent=50, step="send")))
    await store.apublish(tenant_id, topic, Change(status="DONE", result={"sent": 1}))


# --- what a feed carries ----------------------------------------------------------------------
async def test_staff_on_the_jobs_feed_get_every_change_of_every_job_of_the_tenant() -> None:
    # given a staff connection on the jobs feed, and a job that started before it subscribed
    before = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, before, Change(status="PROCESSING", owner_id=11, attempt=1))
    async with ws(make_token(role="staff")) as comm:
        answer = await _watch(comm, "jobs")

        # when that job reports progress, and two jobs of two other owners run their lives
        first, second = Topic.job(uuid.uuid4()), Topic.job(uuid.uuid4())
        await store.apublish(ALPHA, before, Change(progress=Progress(percent=10)))
        await _job_lifecycle(ALPHA, first, owner_id=11)
        await _job_lifecycle(ALPHA, second, owner_id=12)
        by_item = await _until_terminal(comm, [first, second])
        assert await comm.receive_nothing(timeout=0.3)

    # then the answer is "subscribed" (a feed has no position), then each change arrives as its
    # item's whole state document, naming the item: per item in order, every status change
    # (progress in a burst may be coalesced, as for a topic), the terminal one with its result
    assert answer == {"type": "subscribed", "topic": "jobs", "seq": 0, "epoch": 0}
    assert protocol.check_server_frame(answer) == []
    for frames in by_item.values():
        assert all(protocol.check_server_frame(frame) == [] for frame in frames)
        seqs = [f["seq"] for f in frames]
        assert seqs == sorted(set(seqs))
    for topic in (first, second):
        statuses = [f["status"] for f in by_item[str(topic)] if f["progress"] is None]
        assert statuses == ["PENDING", "PROCESSING", "DONE"]
        assert by_item[str(topic)][-1]["result"] == {"sent": 1}
    assert [(f["seq"], f["progress"]["percent"]) for f in by_item[str(before)]] == [(2, 10)]


async def test_the_videos_feed_carries_videos_and_the_jobs_feed_jobs() -> None:
    # given an admin connection on both feeds
    async with ws(make_token(role="admin")) as comm:
        assert (await _watch(comm, "videos"))["type"] == "subscribed"
        assert (await _watch(comm, "jobs"))["type"] == "subscribed"

        # when a video and a job change
        video, job = Topic.video(uuid.uuid4()), Topic.job(uuid.uuid4())
        await store.apublish(ALPHA, video, Change(status="UPLOADED", owner_id=OWNER))
        await store.apublish(ALPHA, job, Change(status="PENDING", owner_id=OWNER))
        frames = await _states(comm, 2)
        assert await comm.receive_nothing(timeout=0.3)

    # then each arrives once, by the feed of its kind
    assert sorted(f["topic"] for f in frames) == sorted([str(video), str(job)])


async def test_an_unsubscribed_feed_sends_nothing_more() -> None:
    # given a staff connection on the jobs feed
    async with ws(make_token()) as comm:
        await _watch(comm, "jobs")

        # when it unsubscribes and a job changes
        answer = await ask(comm, {"type": "unsubscribe", "topic": "jobs"})
        await store.apublish(ALPHA, Topic.job(uuid.uuid4()), Change(status="PENDING"))

        # then the answer names the feed and nothing follows
        assert answer == {"type": "unsubscribed", "topic": "jobs"}
        assert protocol.check_server_frame(answer) == []
        assert await comm.receive_nothing(timeout=0.3)


async def test_a_connection_on_a_topic_and_its_feed_gets_each_change_once_on_each() -> None:
    # given a staff connection watching one job and the jobs feed
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=OWNER))
    async with ws(make_token()) as comm:
        assert (await ask(comm, {"type": "subscribe", "topic": str(topic)}))["seq"] == 1
        await _watch(comm, "jobs")

        # when the job changes twice
        await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
        await store.apublish(ALPHA, topic, Change(progress=Progress(percent=40)))
        frames = await _states(comm, 4)
        assert await comm.receive_nothing(timeout=0.3)

    # then the topic's subscription and the feed each deliver both, no more (the two copies
    # the script publishes are told apart: neither subscription gets the other's twice)
    assert sorted(f["seq"] for f in frames) == [2, 2, 3, 3]


@pytest.mark.parametrize("extra", [{"since": 0}, {"epoch": 1, "since": 1}])
async def test_a_feed_takes_neither_since_nor_epoch(extra: dict[str, int]) -> None:
    # given a staff connection
    async with ws(make_token()) as comm:
        # when it subscribes to a feed with a position
        answer = await ask(comm, {"type": "subscribe", "topic": "jobs", **extra})

        # then it is refused as a bad request, and nothing is watched
        assert (answer["type"], answer["topic"], answer["code"]) == ("error", "jobs", "bad_request")
        await store.apublish(ALPHA, Topic.job(uuid.uuid4()), Change(status="PENDING"))
        assert await comm.receive_nothing(timeout=0.3)


@override_settings(REALTIME_MAX_SUBSCRIPTIONS=2)
async def test_a_feed_counts_against_the_subscription_limit() -> None:
    # given a connection at the limit with one topic and one feed
    topic = Topic.job(uuid.uuid4())
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=OWNER))
    async with ws(make_token()) as comm:
        await ask(comm, {"type": "subscribe", "topic": str(topic)})
        await _watch(comm, "jobs")

        # when it asks for the other feed, and the same feed again
        other = await _watch(comm, "videos")
        again = await _watch(comm, "jobs")

    # then the other feed is refused, and the feed already watched is confirmed again
    assert (other["type"], other["code"]) == ("error", "too_many_subscriptions")
    assert again == {"type": "subscribed", "topic": "jobs", "seq": 0, "epoch": 0}


# --- who may watch ----------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["teacher", "student", "parent"])
@pytest.mark.parametrize("feed", ["jobs", "videos"])
async def test_roles_other_than_staff_and_admin_get_not_found(role: str, feed: str) -> None:
    # given a connection of a role that sees only its own items
    async with ws(make_token(role=role, user_id=OWNER)) as comm:
        # when it subscribes to a feed
        answer = await _watch(comm, feed)

        # and one of its own jobs changes
        await _job_lifecycle(ALPHA, Topic.job(uuid.uuid4()), owner_id=OWNER)

        # then the answer is not_found, as for a topic that does not exist, and nothing follows
        assert answer == {
            "type": "error",
            "topic": feed,
            "code": "not_found",
            "detail": "No such topic.",
        }
        assert await comm.receive_nothing(timeout=0.3)
    assert await _feed_members(ALPHA, Feed(feed)) == 0


async def test_a_token_renewed_with_a_role_below_staff_loses_the_feed() -> None:
    # given a staff connection on the jobs feed
    async with ws(make_token(role="staff", user_id=OWNER)) as comm:
        await _watch(comm, "jobs")

        # when its token is replaced by one of the same user as a teacher
        await comm.send_json_to(
            {"type": "auth", "token": make_token(role="teacher", user_id=OWNER)}
        )
        dropped, auth_ok = await recv(comm), await recv(comm)
        await store.apublish(
            ALPHA, Topic.job(uuid.uuid4()), Change(status="PENDING", owner_id=OWNER)
        )

        # then the feed is dropped with not_found, and its changes stop
        assert (dropped["type"], dropped["topic"], dropped["code"]) == (
            "error",
            "jobs",
            "not_found",
        )
        assert auth_ok["type"] == "auth_ok"
        assert await comm.receive_nothing(timeout=0.3)


async def test_feeds_never_cross_tenants() -> None:
    # given staff of two tenants on the jobs feed, and the same job id in both tenants
    same_id = uuid.uuid4()
    async with ws(make_token(tenant_id=ALPHA)) as alpha, ws(make_token(tenant_id=BETA)) as beta:
        await _watch(alpha, "jobs")
        await _watch(beta, "jobs")

        # when a job of each tenant changes (beta's twice)
        await store.apublish(ALPHA, Topic.job(same_id), Change(status="PENDING", owner_id=1))
        await store.apublish(BETA, Topic.job(same_id), Change(status="PENDING", owner_id=2))
        await store.apublish(BETA, Topic.job(same_id), Change(status="PROCESSING", attempt=1))
        alpha_frames = await _states(alpha, 1)
        beta_frames = await _states(beta, 2)

        # then each tenant's staff see their own tenant's changes only
        assert await alpha.receive_nothing(timeout=0.3)
        assert await beta.receive_nothing(timeout=0.3)
    assert [f["seq"] for f in alpha_frames] == [1]
    assert [f["seq"] for f in beta_frames] == [1, 2]
    assert [f["status"] for f in beta_frames] == ["PENDING", "PROCESSING"]


# --- many jobs, slow clients, lost messages ----------------------------------------------------
async def test_two_hundred_concurrent_jobs_on_one_feed_keep_order_and_terminal_states() -> None:
    # given a staff connection on the jobs feed
    jobs = [Topic.job(uuid.uuid4()) for _ in range(200)]
    async with ws(make_token()) as comm:
        await _watch(comm, "jobs")

        # when 200 jobs run at once, from eight publishers, each through 6 changes
        async def run(share: list[Topic]) -> None:
            for topic in share:
                await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=OWNER))
            for topic in share:
                await store.apublish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
            for percent in (25, 50, 75):
                for topic in share:
                    await store.apublish(ALPHA, topic, Change(progress=Progress(percent=percent)))
            for i, topic in enumerate(share):
                final = Change(status="DONE") if i % 5 else Change(status="FAILED", error="x")
                await store.apublish(ALPHA, topic, final)

        await asyncio.gather(*(run(jobs[i::8]) for i in range(8)))
        frames: list[Any] = []
        finished: set[str] = set()
        while len(finished) < len(jobs):
            frame = await recv(comm, 10)
            frames.append(frame)
            if frame["status"] in ("DONE", "FAILED"):
                finished.add(frame["topic"])
        assert await comm.receive_nothing(timeout=0.5)

    # then every job's terminal state arrived, and per job the seqs only went up
    assert finished == {str(topic) for topic in jobs}
    per_job: dict[str, list[int]] = {}
    for frame in frames:
        per_job.setdefault(frame["topic"], []).append(frame["seq"])
    for seqs in per_job.values():
        assert seqs == sorted(set(seqs))
        assert seqs[-1] == 6


async def test_a_slow_client_gets_every_status_change_with_progress_coalesced() -> None:
    # given a staff connection on the jobs feed whose client reads nothing for now
    jobs = [Topic.job(uuid.uuid4()) for _ in range(20)]
    async with ws(make_token()) as comm:
        await _watch(comm, "jobs")
        release = _hold_sends(comm)

        # when 20 jobs each go through 8 changes in one burst while nothing is sent
        await _burst(jobs)
        feed = _feed(_consumer_of(comm))
        await _until(lambda: all(_seq(feed.sent(str(topic))) == 8 for topic in jobs))
        release()
        by_item = await _until_terminal(comm, jobs)
        assert await comm.receive_nothing(timeout=0.5)

    # then each job's status changes all arrive, in order, and its progress was coalesced away
    for topic in jobs:
        frames = by_item[str(topic)]
        assert [(f["seq"], f["status"]) for f in frames] == [
            (1, "PENDING"),
            (2, "PROCESSING"),
            (8, "DONE"),
        ]


async def test_a_client_too_slow_for_status_changes_gets_the_latest_state_of_each_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a feed that queues at most 10 frames, for a client that reads nothing for now
    monkeypatch.setattr(feeds, "MAX_QUEUED_FRAMES", 10)
    jobs = [Topic.job(uuid.uuid4()) for _ in range(20)]
    async with ws(make_token()) as comm:
        await _watch(comm, "jobs")
        release = _hold_sends(comm)

        # when 20 jobs each go through 8 changes in one burst
        await _burst(jobs)
        feed = _feed(_consumer_of(comm))
        await _until(lambda: all(_seq(feed.sent(str(topic))) == 8 for topic in jobs))
        queued = feed.queued
        release()
        by_item = await _until_terminal(comm, jobs)
        assert await comm.receive_nothing(timeout=0.5)

    # then nothing more than the limit plus one frame per item waited, and every job ended with
    # its terminal state, in order
    assert queued <= 10 + len(jobs)
    for topic in jobs:
        seqs = [f["seq"] for f in by_item[str(topic)]]
        assert seqs == sorted(set(seqs))
        assert (seqs[-1], by_item[str(topic)][-1]["status"]) == (8, "DONE")
    assert sum(len(frames) for frames in by_item.values()) < 3 * len(jobs)


async def test_a_client_that_lets_too_many_items_wait_is_closed_as_not_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a feed that lets at most 5 items wait, for a client that reads nothing
    monkeypatch.setattr(feeds, "MAX_PENDING_ITEMS", 5)
    async with ws(make_token()) as comm:
        await _watch(comm, "jobs")
        consumer = _consumer_of(comm)
        feed = _feed(consumer)
        release = _hold_sends(comm)
        sent_close: list[dict[str, Any]] = []
        real_close = consumer.close

        async def close(code: int | None = None) -> None:
            sent_close.append({"code": code})
            await real_close(code)

        consumer.close = close

        # when 8 jobs change while nothing is sent
        for _ in range(8):
            await store.apublish(ALPHA, Topic.job(uuid.uuid4()), Change(status="PENDING"))
        await _until(lambda: consumer._closed)
        release()

    # then the connection is closed as a client that stopped reading (4008), once, and what
    # waited for it is freed at once
    assert sent_close == [{"code": 4008}]
    assert feed.pending == {}


async def test_a_busy_item_keeps_its_place_so_the_others_get_their_turn() -> None:
    # given three running jobs on a feed whose client reads nothing for now
    a, b, c = (Topic.job(uuid.uuid4()) for _ in range(3))
    async with ws(make_token()) as comm:
        await _watch(comm, "jobs")
        for topic in (a, b, c):
            await store.apublish(ALPHA, topic, Change(status="PROCESSING", owner_id=OWNER))
        await _states(comm, 3)
        feed = _feed(_consumer_of(comm))
        feed.ready = False  # hold its frames back
        for topic in (a, b, c):
            await store.apublish(ALPHA, topic, Change(progress=Progress(percent=1)))
        await _until(lambda: len(feed.pending) == 3)

        # when the first job reports progress four more times before anything is sent
        for percent in range(2, 6):
            await store.apublish(ALPHA, a, Change(progress=Progress(percent=percent)))
        await _until(lambda: _seq(feed.sent(str(a))) == 6)
        feed.ready = True
        _consumer_of(comm)._wake_sender()
        frames = await _states(comm, 3)
        assert await comm.receive_nothing(timeout=0.3)

    # then it is still sent first, with its newest progress only, and the other two follow
    assert [f["topic"] for f in frames] == [str(a), str(b), str(c)]
    assert (frames[0]["seq"], frames[0]["progress"]["percent"]) == (6, 5)


@pytest.mark.django_db(transaction=True)  # the sweep may look for a record to rebuild from
async def test_a_feed_item_whose_change_the_layer_lost_is_repaired_by_the_sweep() -> None:
    # given a staff connection on the jobs feed that saw a job start
    topic = Topic.job(uuid.uuid4())
    async with ws(make_token()) as comm:
        await _watch(comm, "jobs")
        await store.apublish(ALPHA, topic, Change(status="PROCESSING", owner_id=OWNER, attempt=1))
        assert (await recv(comm))["seq"] == 1

        # when its next change is applied but the feed's copy is lost (published elsewhere)
        keys, args = store._apply_args(ALPHA, topic, Change(progress=Progress(percent=60)))
        args[8] = "nowhere"  # ARGV[9], the feed channel
        await async_redis().evalsha(store._async_script().sha, len(keys), *keys, *args)
        assert await comm.receive_nothing(timeout=0.3)
        await watchdog._sweepers[asyncio.get_running_loop()].sweep()
        frame = await recv(comm)

    # then a sweep re-reads the running items the feed saw and sends the missed state
    assert (frame["topic"], frame["seq"], frame["progress"]["percent"]) == (str(topic), 2, 60)


# --- the script's publish: one more per change ----------------------------------------------
async def test_each_accepted_change_is_published_once_on_the_feed_of_its_kind() -> None:
    # given raw listeners on the jobs and videos feed channels of the tenant
    space = store.keyspace()
    jobs = _RawListener(space.feed_channel(ALPHA, Feed.JOBS))
    videos = _RawListener(space.feed_channel(ALPHA, Feed.VIDEOS))
    topic = Topic.job(uuid.uuid4())
    try:
        await jobs.start()
        await videos.start()

        # when two changes are accepted and one refused (percent backwards)
        await store.apublish(ALPHA, topic, Change(status="PROCESSING", owner_id=OWNER, attempt=1))
        await store.apublish(ALPHA, topic, Change(progress=Progress(percent=50)))
        refused = await store.apublish(ALPHA, topic, Change(progress=Progress(percent=20)))
        job_messages = await jobs.messages()
        video_messages = await videos.messages()
    finally:
        await jobs.stop()
        await videos.stop()

    # then the jobs feed got exactly the two accepted changes, marked as the feed's copy
    assert refused.accepted is False
    assert [(m["topic"], m["seq"], m["feed"]) for m in job_messages] == [
        (str(topic), 1, True),
        (str(topic), 2, True),
    ]
    assert json.loads(job_messages[1]["frame"])["progress"]["percent"] == 50
    assert video_messages == []


class _RawListener:
    """A raw async Redis subscriber on one channel: exactly what the script PUBLISHes there."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.pubsub = async_redis().pubsub(ignore_subscribe_messages=True)

    async def start(self) -> None:
        await self.pubsub.subscribe(self.channel)

    async def messages(self, wait: float = 0.3) -> list[dict[str, Any]]:
        received = []
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline:
            message = await self.pubsub.get_message(timeout=0.05)
            if message is not None:
                received.append(msgpack.unpackb(message["data"], raw=False))
        return received

    async def stop(self) -> None:
        await self.pubsub.aclose()


# --- helpers ------------------------------------------------------------------------------------
def _consumer_of(comm: WebsocketCommunicator) -> Any:
    live = [c for c in watchdog._sweepers[asyncio.get_running_loop()].connections if not c._closed]
    assert len(live) == 1, "one open connection expected"
    return live[0]


def _feed(consumer: Any, feed: Feed = Feed.JOBS) -> Any:
    return consumer._feeds[feed]


def _hold_sends(comm: WebsocketCommunicator) -> Any:
    """Make the connection's sends block, as a client that stops reading makes them; returns
    the function that lets them go."""
    consumer = _consumer_of(comm)
    gate = asyncio.Event()
    real_send = consumer.base_send

    async def held_send(message: dict[str, Any]) -> None:
        await gate.wait()
        await real_send(message)

    consumer.base_send = held_send
    return gate.set


async def _burst(jobs: list[Topic]) -> None:
    """Eight changes per job, PENDING to DONE, in one pipelined round trip."""
    async with async_redis().pipeline(transaction=False) as pipe:
        for topic in jobs:
            for change in [
                Change(status="PENDING", owner_id=OWNER),
                Change(status="PROCESSING", attempt=1),
                *(Change(progress=Progress(percent=p)) for p in (10, 30, 50, 70, 90)),
                Change(status="DONE", result={"ok": True}),
            ]:
                keys, args = store._apply_args(ALPHA, topic, change)
                pipe.evalsha(store._async_script().sha, len(keys), *keys, *args)
        await pipe.execute()


async def _until_terminal(
    comm: WebsocketCommunicator, topics: list[Topic], within: float = 10
) -> dict[str, list[Any]]:
    """Every frame, by item, until each of ``topics`` got a terminal state."""
    by_item: dict[str, list[Any]] = {}
    waiting = {str(topic) for topic in topics}
    while waiting:
        frame = await recv(comm, within)
        assert frame["type"] == "state", frame
        by_item.setdefault(frame["topic"], []).append(frame)
        if frame["status"] in ("DONE", "FAILED", "READY"):
            waiting.discard(frame["topic"])
    return by_item


def _seq(position: tuple[int, int] | None) -> int:
    return 0 if position is None else position[1]


async def _until(predicate: Any, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def _feed_members(tenant_id: int, feed: Feed) -> int:
    """Redis' own count of subscribers on the feed's channel."""
    channel = store.keyspace().feed_channel(tenant_id, feed)
    counts = await async_redis().pubsub_numsub(channel)
    return int(counts[0][1])
