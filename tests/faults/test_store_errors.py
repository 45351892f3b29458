"""Every Redis error is "Redis unavailable" above the store (issue 10, audit F3).

Each fault is a real Redis state on a private server: OOM (maxmemory 1), READONLY (a replica
of a dead primary), BUSY (a long script), connection refused and reset (the fault proxy
dropping and resetting), a timeout (the proxy's blackhole); NOSCRIPT after SCRIPT FLUSH is
reloaded and retried.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from realtime import store
from realtime.http import progress_reply
from realtime.keys import Topic
from realtime.state import Change
from realtime.store import RealtimeUnavailable
from tests.faults.stack import REDIS_FAULTS, RedisFault
from tests.faults.support import RedisServer
from tests.support.members import Member

pytestmark = pytest.mark.faults
TENANT = 1


def _running(attempt: int = 1) -> Change:
    return Change(status="PROCESSING", attempt=attempt, owner_id=7, job_type="test.gate")


def _done(attempt: int = 1) -> Change:
    return Change(
        status="DONE", attempt=attempt, owner_id=7, job_type="test.gate", result={"ok": True}
    )


@pytest.fixture
def broken(redis_fault: RedisFault, use_redis: Callable[[str], None]) -> RedisFault:
    """The fault's Redis with a running topic in it where it can hold one, then broken."""
    use_redis(redis_fault.url)
    return redis_fault


def _topic() -> Topic:
    return Topic.job(uuid.uuid4())


@pytest.mark.parametrize("redis_fault", REDIS_FAULTS, indirect=True)
def test_a_refused_publish_is_redis_unavailable_and_works_once_redis_answers(
    broken: RedisFault,
) -> None:
    # given a topic and a Redis in the fault's state
    topic = _topic()
    broken.inject()

    # when a worker publishes a change
    # then the store says "Redis unavailable", whatever redis-py called the error
    with pytest.raises(RealtimeUnavailable):
        store.publish(TENANT, topic, _running())

    # and once Redis answers, the same change is applied
    broken.heal()
    result = store.publish(TENANT, topic, _running())
    assert result.accepted
    snap = store.snapshot(TENANT, topic)
    assert snap is not None
    assert snap.status == "PROCESSING"


@pytest.mark.parametrize("redis_fault", REDIS_FAULTS, indirect=True)
def test_reads_either_answer_or_are_redis_unavailable(broken: RedisFault) -> None:
    # given a Redis in the fault's state
    topic = _topic()
    broken.inject()

    # when the progress endpoint's read runs
    # then it answers (OOM and READONLY still serve reads) or says "Redis unavailable"
    if broken.reads_work:
        assert store.snapshot(TENANT, topic) is None
    else:
        with pytest.raises(RealtimeUnavailable):
            store.snapshot(TENANT, topic)


@pytest.mark.parametrize("redis_fault", REDIS_FAULTS, indirect=True)
async def test_async_publish_and_read_are_redis_unavailable_too(broken: RedisFault) -> None:
    # given a Redis in the fault's state
    topic = _topic()
    broken.inject()

    # when the server side publishes or reads
    # then both say "Redis unavailable" (reads only where Redis refuses them)
    with pytest.raises(RealtimeUnavailable):
        await store.apublish(TENANT, topic, _running())
    if not broken.reads_work:
        with pytest.raises(RealtimeUnavailable):
            await store.asnapshot(TENANT, topic)
        with pytest.raises(RealtimeUnavailable):
            await store.apositions_many([(TENANT, topic)])


@pytest.mark.django_db
@pytest.mark.parametrize("redis_fault", REDIS_FAULTS, indirect=True)
def test_a_publish_after_commit_never_raises(
    broken: RedisFault,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a Redis in the fault's state, and a hook queued after the publish (the SQS send)
    topic = _topic()
    broken.inject()
    later: list[str] = []

    # when a transaction that publishes its change commits
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        store.publish_on_commit(TENANT, topic, _done())
        transaction.on_commit(lambda: later.append("sent"))

    # then nothing raised, the next hook ran, and the failure is in the log
    assert later == ["sent"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Redis unavailable" in message for message in warnings)


@pytest.mark.parametrize("scope", ["sync", "async"])
async def test_noscript_after_a_flush_is_reloaded_and_retried(
    scope: str, private_redis: RedisServer, use_redis: Callable[[str], None]
) -> None:
    # given a store whose script Redis knows, then forgets (SCRIPT FLUSH)
    use_redis(private_redis.url())
    topic = _topic()
    store.publish(TENANT, topic, _running())
    await store.apublish(TENANT, _topic(), _running())
    private_redis.client().script_flush()

    # when the next change is published
    if scope == "sync":
        result = store.publish(TENANT, topic, _done())
    else:
        result = await store.apublish(TENANT, topic, _done())

    # then the script was loaded again and the change applied, no error on the way
    assert result.accepted
    snap = store.snapshot(TENANT, topic)
    assert snap is not None
    assert snap.status == "DONE"


def test_a_bad_request_is_not_mistaken_for_unavailable(
    private_redis: RedisServer, use_redis: Callable[[str], None]
) -> None:
    # given a key of the wrong type where a topic's status hash belongs
    use_redis(private_redis.url())
    topic = _topic()
    private_redis.client().set(store.keyspace().status_key(TENANT, topic), "not a hash")

    # when a change is published to it
    # then the error is a bug to see, not an outage to wait out
    with pytest.raises(Exception) as raised:
        store.publish(TENANT, topic, _running())
    assert not isinstance(raised.value, RealtimeUnavailable)
    assert "WRONGTYPE" in str(raised.value)


@pytest.fixture
def staff_token(alpha_staff: Member) -> str:
    return alpha_staff.access_token()


@pytest.mark.django_db
@pytest.mark.parametrize("redis_fault", ["busy", "timeout"], indirect=True)
async def test_the_progress_endpoint_answers_503_when_redis_refuses_reads(
    broken: RedisFault, staff_token: str
) -> None:
    # given a caller with a valid token and a Redis that refuses reads
    token = staff_token
    broken.inject()

    # when the caller polls a topic's progress
    reply = await progress_reply(f"Bearer {token}", _topic())

    # then the answer is 503 with Retry-After, not a crash
    assert reply.status == 503
    assert b'"unavailable"' in reply.body
    assert ("Retry-After", "2") in reply.headers
