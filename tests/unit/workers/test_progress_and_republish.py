"""The handler's progress API and the republisher, with a recording publish function."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from domains.jobs.dispatch import QueueKind
from realtime.keys import Topic
from realtime.state import Change, InvalidChange
from realtime.store import RealtimeUnavailable
from realtime.throttle import ProgressThrottle
from workers.base import JobCancelled, JobProgress, JobRun, LeaseLost
from workers.republish import Republisher


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[int, Topic, Change]] = []
        self.fail = fail

    def __call__(self, tenant_id: int, topic: Topic, change: Change) -> Any:
        if self.fail:
            self.fail -= 1
            raise RealtimeUnavailable("down")
        self.calls.append((tenant_id, topic, change))


def _run(attempt: int = 3) -> JobRun:
    return JobRun(
        job_id=uuid.uuid4(),
        tenant_id=9,
        job_type="messaging.send",
        payload={},
        attempt=attempt,
        owner_id=1,
        kind=QueueKind.MESSAGING,
        receive_count=1,
    )


def test_progress_goes_through_the_throttle_tagged_with_the_attempt() -> None:
    # given job progress on attempt 3 behind a throttle with a long interval
    publish = Recorder()
    throttle = ProgressThrottle(publish, interval=10, clock=lambda: 0.0, auto_flush=False)
    run = _run(attempt=3)
    progress = JobProgress(job=run, throttle=throttle, lost=threading.Event())

    # when two updates arrive within the interval
    progress.update(percent=10, step="a")
    progress.update(percent=20, step="b")  # within the interval: coalesced, pending

    # then one change is published for the job's topic, tagged with the attempt
    assert len(publish.calls) == 1
    tenant_id, topic, change = publish.calls[0]
    assert (tenant_id, topic) == (9, Topic.job(run.job_id))
    assert change.attempt == 3
    assert change.status is None
    assert change.progress is not None
    assert change.progress.percent == 10


def test_progress_after_the_lease_is_lost_raises_and_publishes_nothing() -> None:
    # given job progress whose lease is lost
    publish = Recorder()
    lost = threading.Event()
    progress = JobProgress(
        job=_run(),
        throttle=ProgressThrottle(publish, interval=0, auto_flush=False),
        lost=lost,
    )
    lost.set()

    # when/then an update raises and nothing is published
    assert progress.lease_lost
    with pytest.raises(LeaseLost):
        progress.update(percent=50)
    assert publish.calls == []


def test_progress_after_a_cancel_request_raises_job_cancelled_and_publishes_nothing() -> None:
    # given job progress whose worker has seen a cancel request
    publish = Recorder()
    cancelled = threading.Event()
    progress = JobProgress(
        job=_run(),
        throttle=ProgressThrottle(publish, interval=0, auto_flush=False),
        lost=threading.Event(),
        cancelled=cancelled,
    )
    progress.check()  # nothing asked yet
    cancelled.set()

    # when/then a check or an update raises JobCancelled and nothing is published
    assert progress.cancel_requested
    with pytest.raises(JobCancelled):
        progress.check()
    with pytest.raises(JobCancelled):
        progress.update(percent=50)
    assert publish.calls == []


def test_a_lost_lease_outranks_a_cancel_request() -> None:
    # given an attempt that lost its job and was also asked to stop
    lost, cancelled = threading.Event(), threading.Event()
    progress = JobProgress(
        job=_run(),
        throttle=ProgressThrottle(Recorder(), interval=0, auto_flush=False),
        lost=lost,
        cancelled=cancelled,
    )
    lost.set()
    cancelled.set()

    # when/then it stops as lost: it may not end the job, whose new owner decides
    with pytest.raises(LeaseLost):
        progress.check()


def test_an_impossible_percent_is_a_handler_bug_raised_at_once() -> None:
    # given job progress
    throttle = ProgressThrottle(Recorder(), interval=0, auto_flush=False)
    progress = JobProgress(job=_run(), throttle=throttle, lost=threading.Event())

    # when/then a percent over 100 raises at once
    with pytest.raises(InvalidChange):
        progress.update(percent=140)


def test_the_republisher_keeps_changes_until_redis_takes_them_latest_per_topic() -> None:
    # given a republisher whose publish fails once, holding three changes on two topics
    publish = Recorder(fail=1)
    republisher = Republisher(publish)
    topic_a, topic_b = Topic.job(uuid.uuid4()), Topic.job(uuid.uuid4())
    republisher.add(1, topic_a, Change(status="PROCESSING"))
    republisher.add(1, topic_a, Change(status="DONE"))
    republisher.add(1, topic_b, Change(status="FAILED"))

    # when it retries twice
    first = republisher.retry()  # Redis still down
    second = republisher.retry()

    # then the second retry publishes the latest change of each topic and empties it
    assert (first, second, len(republisher)) == (0, 2, 0)
    assert [(topic, change.status) for _, topic, change in publish.calls] == [
        (topic_a, "DONE"),
        (topic_b, "FAILED"),
    ]
