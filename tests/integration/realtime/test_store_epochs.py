"""Epochs and rebuilds (PROTOCOL.md §2), against real Redis, through the store and the consumer.

A status hash gets its epoch once, when it is created; a hash Redis lost and that is created
again gets a larger one, so ``(epoch, seq)`` keeps ordering states across the loss. A rebuild
recreates a topic from the whole state its record holds, at a new epoch above what the caller
saw, and is a no-op while Redis holds that much or more.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from channels.layers import get_channel_layer

from realtime import store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.integration.realtime.conftest import ALPHA, BETA, ask, make_token, next_frame, open_ws

RUNNING = Change(status="PROCESSING", attempt=1, owner_id=7, job_type="demo")
DONE = Change(status="DONE", attempt=1, owner_id=7, job_type="demo", result={"sent": 3})
NOT_ISSUED = "epoch is not one the server issued."


@pytest.fixture(autouse=True)
async def clean_layer() -> AsyncIterator[None]:
    yield
    await get_channel_layer().flush()


def _status_key(topic: Topic, tenant_id: int = ALPHA) -> str:
    return store.keyspace().status_key(tenant_id, topic)


def _forget(r: redis.Redis, topic: Topic, tenant_id: int = ALPHA) -> None:
    """Redis loses the topic (eviction, flush, a restart without the last writes)."""
    space = store.keyspace()
    r.delete(space.status_key(tenant_id, topic), space.progress_key(tenant_id, topic))


def _next_millisecond(r: redis.Redis) -> None:
    """Let Redis' clock pass the millisecond it is in (epochs are TIME in ms)."""
    seconds, micros = r.time()
    start = seconds * 1000 + micros // 1000
    while True:
        seconds, micros = r.time()
        if seconds * 1000 + micros // 1000 > start:
            return


def test_the_epoch_is_set_when_the_hash_is_created_and_kept(
    topic: Topic, r: redis.Redis, listen: Any
) -> None:
    # given a listener on the topic's group
    listener = listen(ALPHA, topic)

    # when the topic is created and changes a few times
    first = store.publish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    _next_millisecond(r)
    later = [
        store.publish(ALPHA, topic, RUNNING),
        store.publish(ALPHA, topic, Change(progress=Progress(percent=40))),
        store.publish(ALPHA, topic, DONE),
    ]

    # then every result, document, layer message and the hash carry the creation epoch
    assert first.epoch == pytest.approx(time.time() * 1000, abs=5000)
    assert {result.epoch for result in later} == {first.epoch}
    assert [result.seq for result in later] == [2, 3, 4]
    assert {result.document["epoch"] for result in [first, *later]} == {first.epoch}  # type: ignore[index]
    assert [m["epoch"] for m in listener.messages()] == [first.epoch] * 4
    assert int(r.hget(_status_key(topic), "epoch")) == first.epoch  # type: ignore[arg-type]
    snap = store.snapshot(ALPHA, topic)
    assert snap is not None
    assert (snap.epoch, snap.seq, json.loads(snap.frame)["epoch"]) == (first.epoch, 4, first.epoch)


def test_a_hash_lost_and_created_again_by_the_next_publish_gets_a_larger_epoch(
    topic: Topic, r: redis.Redis
) -> None:
    # given a running topic at seq 3 of its first epoch, then lost by Redis
    store.publish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    store.publish(ALPHA, topic, RUNNING)
    before = store.publish(ALPHA, topic, Change(progress=Progress(percent=40)))
    _forget(r, topic)
    _next_millisecond(r)

    # when the worker's next status change arrives
    after = store.publish(ALPHA, topic, DONE)

    # then it created the hash again at seq 1 of a larger epoch: a later position
    assert (after.accepted, after.seq) == (True, 1)
    assert after.epoch > before.epoch
    assert after.position > before.position


def test_a_rebuild_recreates_a_missing_topic_above_the_epoch_the_caller_saw(
    topic: Topic, r: redis.Redis
) -> None:
    # given a caller that saw (E, 40) with E ahead of Redis' clock (a failover to a host whose
    # clock is behind), and no hash at all
    seen = (int(time.time() * 1000) + 3_600_000, 40)

    # when the topic is rebuilt from its record, terminal with a result
    result = store.rebuild(ALPHA, topic, DONE, known=seen)

    # then it exists at seq 1 of the epoch just above the one seen, DONE with its result,
    # expiring as a terminal state does, with no progress hash
    assert (result.accepted, result.reason, result.seq) == (True, "rebuilt", 1)
    assert result.epoch == seen[0] + 1
    document = result.document
    assert document is not None
    assert (document["status"], document["result"], document["epoch"]) == (
        "DONE",
        {"sent": 3},
        seen[0] + 1,
    )
    assert r.hget(_status_key(topic), "owner_id") == b"7"
    assert r.exists(store.keyspace().progress_key(ALPHA, topic)) == 0


def test_a_rebuild_is_a_no_op_while_redis_holds_what_the_caller_saw_or_more(
    topic: Topic, listen: Any
) -> None:
    # given a topic at (E, 2)
    store.publish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    current = store.publish(ALPHA, topic, RUNNING)
    listener = listen(ALPHA, topic)

    # when callers that saw nothing, (E, 2) and (E, 1) ask for a rebuild
    results = [
        store.rebuild(ALPHA, topic, DONE, known=known)
        for known in [(0, 0), current.position, (current.epoch, 1)]
    ]

    # then nothing changed and nothing was published: Redis is not behind any of them
    assert {(r.accepted, r.reason, r.position) for r in results} == {
        (False, "current", current.position)
    }
    assert listener.messages() == []
    snap = store.snapshot(ALPHA, topic)
    assert snap is not None
    assert (snap.status, snap.position) == ("PROCESSING", current.position)


def test_a_rebuild_replaces_a_hash_that_regressed_below_what_the_caller_saw(
    topic: Topic, r: redis.Redis, listen: Any
) -> None:
    # given a topic whose status hash Redis restored from an older dump: seq 2 where watchers
    # already saw seq 4 (a restart from a stale dump keeps the epoch)
    store.publish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    store.publish(ALPHA, topic, RUNNING)
    old_copy = r.dump(_status_key(topic))
    store.publish(ALPHA, topic, Change(progress=Progress(percent=10)))
    seen = store.publish(ALPHA, topic, Change(progress=Progress(percent=20)))
    r.restore(_status_key(topic), 0, old_copy, replace=True)  # type: ignore[arg-type]
    listener = listen(ALPHA, topic)

    # when a caller that saw (E, 4) rebuilds it from the record, which says DONE
    result = store.rebuild(ALPHA, topic, DONE, known=seen.position)

    # then the stale copy is gone: DONE at seq 1 of a larger epoch, published once
    assert (result.accepted, result.seq) == (True, 1)
    assert result.epoch > seen.epoch
    assert result.position > seen.position
    assert [(m["epoch"], m["seq"], m["terminal"]) for m in listener.messages()] == [
        (result.epoch, 1, True)
    ]
    assert r.ttl(store.keyspace().progress_key(ALPHA, topic)) == -2  # progress removed


def test_a_rebuild_needs_the_whole_state(topic: Topic) -> None:
    # given a change without a status (progress only)
    partial = Change(progress=Progress(percent=5))

    # when it is used to rebuild, then it is refused before Redis
    with pytest.raises(ValueError, match="status"):
        store.rebuild(ALPHA, topic, partial)


def test_a_rebuild_in_one_tenant_leaves_the_other_tenants_keys_alone(
    topic: Topic, r: redis.Redis
) -> None:
    # given the same job id running in BETA
    store.publish(BETA, topic, RUNNING)
    beta_before = store.snapshot(BETA, topic)

    # when ALPHA rebuilds its topic of that id
    store.rebuild(ALPHA, topic, DONE)

    # then BETA's state is untouched
    assert store.snapshot(BETA, topic) == beta_before


# --- the consumer ------------------------------------------------------------------------------
async def test_a_consumer_holding_a_high_seq_delivers_seq_1_of_a_new_epoch(
    topic: Topic, r: redis.Redis
) -> None:
    # given a connection that was sent (E1, 4) of a running topic
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    await store.apublish(ALPHA, topic, RUNNING)
    await store.apublish(ALPHA, topic, Change(progress=Progress(percent=10)))
    await store.apublish(ALPHA, topic, Change(progress=Progress(percent=20)))
    async with open_ws(make_token()) as comm:
        held = await ask(comm, {"type": "subscribe", "topic": str(topic)})
        assert held["seq"] == 4

        # when Redis loses the topic and the worker's finish creates it again
        _forget(r, topic)
        _next_millisecond(r)
        await store.apublish(ALPHA, topic, DONE)
        frame = await next_frame(comm)

    # then the connection delivers (E2, 1), DONE
    assert (frame["type"], frame["seq"], frame["status"]) == ("state", 1, "DONE")
    assert frame["epoch"] > held["epoch"]


async def test_subscribe_compares_the_clients_epoch_and_seq_with_the_stored_ones(
    topic: Topic,
) -> None:
    # given a topic at (E, 2)
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    current = await store.apublish(ALPHA, topic, RUNNING)
    async with open_ws(make_token()) as comm:
        # when clients subscribe up to date, from an older epoch at a higher seq, and behind
        up_to_date = await ask(
            comm, {"type": "subscribe", "topic": str(topic), "since": 2, "epoch": current.epoch}
        )
        await ask(comm, {"type": "unsubscribe", "topic": str(topic)})
        older_epoch = await ask(
            comm, {"type": "subscribe", "topic": str(topic), "since": 90, "epoch": 1}
        )
        await ask(comm, {"type": "unsubscribe", "topic": str(topic)})
        behind = await ask(
            comm, {"type": "subscribe", "topic": str(topic), "since": 1, "epoch": current.epoch}
        )

    # then the first is told it is up to date, the others get the state
    assert up_to_date == {
        "type": "subscribed",
        "topic": str(topic),
        "seq": 2,
        "epoch": current.epoch,
    }
    assert (older_epoch["type"], older_epoch["seq"], older_epoch["epoch"]) == (
        "state",
        2,
        current.epoch,
    )
    assert (behind["type"], behind["seq"]) == ("state", 2)


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"since": 1, "epoch": "1796154847512"}, "epoch must be a non-negative integer."),
        ({"since": 1, "epoch": 1.5}, "epoch must be a non-negative integer."),
        ({"since": 1, "epoch": True}, "epoch must be a non-negative integer."),
        ({"since": 1, "epoch": -1}, "epoch must be a non-negative integer."),
        ({"since": 1, "epoch": 2**53}, NOT_ISSUED),
        ({"since": 1, "epoch": int(time.time() * 1000) + 2 * 86_400_000}, NOT_ISSUED),
        ({"epoch": 5}, "epoch needs since."),
    ],
)
async def test_a_malformed_epoch_is_a_bad_request_and_subscribes_nothing(
    topic: Topic, extra: dict[str, Any], detail: str
) -> None:
    # given a topic that exists
    await store.apublish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    async with open_ws(make_token()) as comm:
        # when a subscribe carries a malformed epoch
        answer = await ask(comm, {"type": "subscribe", "topic": str(topic), **extra})
        await store.apublish(ALPHA, topic, RUNNING)

        # then it is refused with the reason, and no state of the topic follows
        assert answer == {
            "type": "error",
            "topic": str(topic),
            "code": "bad_request",
            "detail": detail,
        }
        assert await comm.receive_nothing(timeout=0.3)
