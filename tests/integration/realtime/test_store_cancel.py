"""The cancel rules of PROTOCOL.md §2 inside the Lua script, against real Redis.

CANCELLED is terminal for jobs and videos; ``cancel_requested`` is recorded once, published as
a change, kept through new attempts and into the terminal state, and read back by the worker's
pipelined check (``store.cancel_requests_many``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis

from realtime import store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.support.tokens import ALPHA, BETA


def _keys(topic: Topic, tenant_id: int = ALPHA) -> tuple[str, str]:
    space = store.keyspace()
    return space.status_key(tenant_id, topic), space.progress_key(tenant_id, topic)


def _running(topic: Topic, tenant_id: int = ALPHA) -> None:
    store.publish(tenant_id, topic, Change(status="PENDING", owner_id=7, job_type="demo"))
    store.publish(tenant_id, topic, Change(status="PROCESSING", attempt=1))
    store.publish(tenant_id, topic, Change(progress=Progress(percent=30, step="sending")))


def test_a_cancel_request_is_one_published_change_and_a_repeat_publishes_nothing(
    topic: Topic, listen: Any
) -> None:
    # given a running job with progress, and a listener on its channel
    _running(topic)
    listener = listen(ALPHA, topic)

    # when a cancel is requested twice
    first = store.publish(ALPHA, topic, Change(cancel_requested=True))
    again = store.publish(ALPHA, topic, Change(cancel_requested=True))

    # then the first is one accepted change (seq + 1) whose document says so, a status change
    # that is never coalesced away, with the progress kept
    assert first.accepted
    assert first.document is not None
    assert first.document["cancel_requested"] is True
    assert first.document["status"] == "PROCESSING"
    assert first.document["progress"]["percent"] == 30
    messages = listener.messages()
    assert [(m["seq"], m["progress_only"], m["terminal"]) for m in messages] == [
        (first.seq, False, False)
    ]
    assert json.loads(messages[0]["frame"])["cancel_requested"] is True
    # and the repeat is "unchanged": the same state back, nothing more published
    assert (again.accepted, again.reason, again.seq) == (False, "unchanged", first.seq)
    assert again.document == first.document
    assert listener.messages() == []


def test_documents_say_false_until_a_cancel_is_requested(topic: Topic) -> None:
    # given a new job / when it is created and runs
    _running(topic)

    # then its document carries cancel_requested false
    snap = store.snapshot(ALPHA, topic)
    assert snap is not None
    assert json.loads(snap.document)["cancel_requested"] is False


@pytest.mark.parametrize("kind", ["job", "video"])
def test_cancelled_is_terminal_for_both_kinds(kind: str, r: redis.Redis) -> None:
    # given a running job or video that was asked to stop
    topic = Topic.job(uuid.uuid4()) if kind == "job" else Topic.video(uuid.uuid4())
    first = "PENDING" if kind == "job" else "UPLOADED"
    store.publish(ALPHA, topic, Change(status=first, owner_id=7))
    store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
    store.publish(ALPHA, topic, Change(progress=Progress(percent=55)))
    store.publish(ALPHA, topic, Change(cancel_requested=True))
    status_key, progress_key = _keys(topic)

    # when its worker ends it CANCELLED, and late events follow
    cancelled = store.publish(ALPHA, topic, Change(status="CANCELLED", attempt=1))
    late = [
        store.publish(ALPHA, topic, Change(progress=Progress(percent=80))),
        store.publish(ALPHA, topic, Change(status="DONE" if kind == "job" else "READY")),
        store.publish(ALPHA, topic, Change(status="FAILED", error="late")),
        store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=2)),
    ]

    # then CANCELLED is accepted as terminal: no progress, the flag kept, the terminal TTL
    assert cancelled.accepted
    document = cancelled.document
    assert document is not None
    assert (document["status"], document["progress"], document["cancel_requested"]) == (
        "CANCELLED",
        None,
        True,
    )
    assert r.exists(progress_key) == 0
    assert 86_390 <= r.ttl(status_key) <= 86_400
    # and nothing changes it any more
    assert [(change.accepted, change.reason) for change in late] == [(False, "terminal")] * 4
    assert all(change.document == document for change in late)


def test_a_pending_job_goes_straight_to_cancelled_with_its_flag(topic: Topic) -> None:
    # given a PENDING job
    store.publish(ALPHA, topic, Change(status="PENDING", attempt=0, owner_id=7, job_type="x"))

    # when it is cancelled before any worker took it (the change the jobs service publishes)
    result = store.publish(
        ALPHA, topic, Change(status="CANCELLED", attempt=0, cancel_requested=True)
    )

    # then it is CANCELLED at seq 2 and no claim's PROCESSING can revive it
    assert result.accepted
    assert result.document is not None
    assert (result.seq, result.document["status"]) == (2, "CANCELLED")
    assert result.document["cancel_requested"] is True
    revived = store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
    assert (revived.accepted, revived.reason) == (False, "terminal")


def test_a_cancel_request_on_a_finished_job_changes_nothing(topic: Topic) -> None:
    # given a DONE job
    _running(topic)
    done = store.publish(ALPHA, topic, Change(status="DONE", result={"sent": 1}))

    # when a cancel request arrives after it
    late = store.publish(ALPHA, topic, Change(cancel_requested=True))

    # then it is refused as terminal and the document still says false
    assert (late.accepted, late.reason) == (False, "terminal")
    assert late.document == done.document
    assert late.document is not None
    assert late.document["cancel_requested"] is False


def test_the_flag_survives_a_new_attempt_and_a_change_without_it(topic: Topic) -> None:
    # given a running job asked to stop
    _running(topic)
    store.publish(ALPHA, topic, Change(cancel_requested=True))

    # when its next attempt starts (the first worker died) and reports progress
    store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=2))
    result = store.publish(ALPHA, topic, Change(progress=Progress(percent=5), attempt=2))

    # then the request is still recorded: a request is never withdrawn
    assert result.document is not None
    assert result.document["cancel_requested"] is True


def test_a_rebuild_from_the_record_carries_the_flag(topic: Topic, r: redis.Redis) -> None:
    # given a running job asked to stop, whose hash Redis then lost
    _running(topic)
    seen = store.publish(ALPHA, topic, Change(cancel_requested=True))
    r.delete(*_keys(topic))

    # when it is rebuilt from its record, which holds the flag
    whole = Change(
        status="PROCESSING", attempt=1, owner_id=7, job_type="demo", cancel_requested=True
    )
    rebuilt = store.rebuild(ALPHA, topic, whole, known=seen.position)

    # then the rebuilt state says so, at a new epoch
    assert rebuilt.accepted
    assert rebuilt.document is not None
    assert rebuilt.document["cancel_requested"] is True
    assert rebuilt.epoch > seen.epoch


def test_the_workers_check_reads_each_flag_in_its_own_tenant(topic: Topic) -> None:
    # given alpha's job asked to stop, another alpha job running, beta's job with the same id
    # running, and an id Redis does not hold
    _running(topic)
    store.publish(ALPHA, topic, Change(cancel_requested=True))
    other = Topic.job(uuid.uuid4())
    _running(other)
    _running(topic, tenant_id=BETA)
    unknown = Topic.job(uuid.uuid4())

    # when the worker's supervisor reads them in one pipelined call
    flags = store.cancel_requests_many(
        [(ALPHA, topic), (ALPHA, other), (BETA, topic), (ALPHA, unknown)]
    )

    # then only alpha's cancelled job reads True: beta's same id is another topic
    assert flags == [True, False, False, False]
    assert store.cancel_requests_many([]) == []
