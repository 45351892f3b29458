"""The runner against real PostgreSQL, Redis and moto's SQS, with workers in threads.

Rows must be committed for worker threads to see them, hence transactional tests throughout.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings

from domains.common.aws import sqs_client
from domains.jobs import services
from domains.jobs.dispatch import JobMessage, queue_url
from domains.jobs.models import Job, JobResult
from realtime import clients, store
from realtime.keys import Topic
from tests.conftest import Member
from tests.integration.workers.conftest import (
    KIND,
    ThreadWorker,
    create_job,
    fast_config,
    job_row,
    job_status,
    queue_bodies,
    queue_counts,
    send_duplicate,
    wait_for,
)
from tests.integration.workers.handlers import AlwaysFails, ConcurrencyProbe, Gate, Refuses, Sleeper
from workers.config import dlq_url
from workers.sqs import queues_create

pytestmark = pytest.mark.django_db(transaction=True)
StartWorker = Callable[..., ThreadWorker]
MESSAGE = {"subject": "Hello", "body": "Class at ten.", "recipients": []}


def _recipients(n: int) -> list[str]:
    return [f"student{i}@example.com" for i in range(n)]


def _finished(job: Job) -> bool:
    return job_status(job.job_id) in {"DONE", "FAILED"}


# --- the happy path and duplicates ------------------------------------------------------------
def test_a_messaging_job_sends_every_email_once_and_ends_done(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    payload = {**MESSAGE, "recipients": [*_recipients(3), "not-an-address", "STUDENT0@example.com"]}
    job = create_job(alpha_staff, "messaging.send", payload)

    start_worker()
    wait_for(lambda: _finished(job))

    row = job_row(job.job_id)
    assert (row.status, row.attempt, row.error) == ("DONE", 1, "")
    assert row.result.data == {
        "sent": 3,
        "failed": 1,
        "failed_addresses": [{"address": "not-an-address", "reason": "invalid_address"}],
    }
    assert sorted(m.to[0] for m in mail.outbox) == _recipients(3)
    assert row.started_at is not None
    assert row.finished_at is not None
    wait_for(lambda: queue_counts() == (0, 0))


def test_the_job_thread_holds_no_database_connection_while_the_handler_runs(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    probe = ConcurrencyProbe(seconds=0.05)
    jobs = [create_job(alpha_staff, "test.probe") for _ in range(3)]

    start_worker(handlers={"test.probe": probe})
    wait_for(lambda: all(_finished(job) for job in jobs))

    assert len(probe.calls.started) == 3
    assert probe.connections_held == 0


def test_two_copies_of_one_message_run_the_job_once(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    job = create_job(alpha_staff, "messaging.send", {**MESSAGE, "recipients": _recipients(4)})
    send_duplicate(job)  # at-least-once delivery: both copies can be received together

    running = start_worker(config=fast_config(visibility_timeout=2, lease_seconds=1))
    wait_for(lambda: _finished(job))
    wait_for(lambda: queue_counts() == (0, 0), timeout=20)  # the copy comes back and is dropped

    assert len(mail.outbox) == 4
    assert JobResult.objects.filter(job__job_id=job.job_id).count() == 1
    assert job_row(job.job_id).attempt == 1
    assert running.worker.stats.duplicates == 1


def test_a_redelivery_after_done_changes_nothing_and_sends_nothing(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    job = create_job(alpha_staff, "messaging.send", {**MESSAGE, "recipients": _recipients(2)})
    running = start_worker()
    wait_for(lambda: _finished(job))
    topic = Topic.job(job.job_id)
    done = store.snapshot(alpha_staff.tenant.id, topic)
    assert done is not None
    assert done.status == "DONE"

    send_duplicate(job)
    wait_for(lambda: running.worker.stats.duplicates == 1)

    assert len(mail.outbox) == 2
    assert job_row(job.job_id).attempt == 1
    again = store.snapshot(alpha_staff.tenant.id, topic)
    assert again is not None
    assert again.seq == done.seq
    wait_for(lambda: queue_counts() == (0, 0))


# --- leases -----------------------------------------------------------------------------------
def test_a_zombie_that_finishes_after_a_takeover_changes_nothing(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # Given a worker paused past its 1 s lease (its heartbeat is not due for another 20 s)
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    zombie = start_worker(
        handlers={"test.gate": gate},
        config=fast_config(visibility_timeout=30, lease_seconds=1, heartbeat_interval=20),
    )
    wait_for(gate.running.is_set)
    time.sleep(1.2)
    takeover = services.job_claim(
        alpha_staff.tenant.id, job_id=job.job_id, lease_owner="successor", lease_seconds=30
    )
    assert takeover.result is services.ClaimResult.CLAIMED

    # When the zombie's handler completes and it tries to finish the job
    gate.release.set()
    wait_for(lambda: gate.calls.ended == ["done"])
    wait_for(lambda: zombie.worker.stats.lost == 1)

    # Then the finish is refused and the message left alone for the attempt that holds the job
    row = job_row(job.job_id)
    assert (row.status, row.attempt) == ("PROCESSING", 2)
    assert not JobResult.objects.filter(job__job_id=job.job_id).exists()
    assert zombie.worker.stats.done == 0
    assert queue_counts() == (0, 1)


def test_a_worker_learns_at_its_next_heartbeat_that_its_lease_was_taken_over(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # Given a worker whose heartbeat comes too late to keep its 1 s lease (a paused process)
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    zombie = start_worker(
        handlers={"test.gate": gate},
        config=fast_config(visibility_timeout=6, lease_seconds=1, heartbeat_interval=2.5),
    )
    wait_for(gate.running.is_set)

    # When another attempt takes the job over after the lease ended, and finishes it
    time.sleep(1.2)
    takeover = services.job_claim(
        alpha_staff.tenant.id, job_id=job.job_id, lease_owner="successor", lease_seconds=30
    )
    assert takeover.result is services.ClaimResult.CLAIMED
    wait_for(lambda: gate.calls.ended == ["lease_lost"], timeout=10)
    finished = services.job_finish(
        alpha_staff.tenant.id, job_id=job.job_id, attempt=2, status="DONE", result={"by": 2}
    )

    # Then the zombie learnt at its next heartbeat that it lost, and its outcome counts for nothing
    assert finished is True
    row = job_row(job.job_id)
    assert (row.status, row.attempt, row.result.data) == ("DONE", 2, {"by": 2})
    assert zombie.worker.stats.lost == 1
    assert zombie.worker.stats.done == 0
    gate.release.set()


def test_a_heartbeat_keeps_a_job_longer_than_its_visibility_timeout_exclusive(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    config = fast_config(visibility_timeout=2, lease_seconds=1, heartbeat_interval=0.5)
    first = start_worker(handlers={"test.gate": gate}, config=config)
    second = start_worker(handlers={"test.gate": gate}, config=config)
    wait_for(gate.running.is_set)

    samples = []
    deadline = time.monotonic() + 4.5  # more than twice the visibility timeout
    while time.monotonic() < deadline:
        samples.append(queue_counts())
        time.sleep(0.25)
    gate.release.set()
    wait_for(lambda: _finished(job))

    assert set(samples) == {(0, 1)}  # never visible to the second worker
    assert gate.calls.started == [(str(job.job_id), 1)]
    assert job_row(job.job_id).status == "DONE"
    assert first.worker.stats.heartbeats + second.worker.stats.heartbeats >= 6


# --- errors -----------------------------------------------------------------------------------
def test_a_poison_message_goes_to_the_dead_letter_queue_and_its_job_fails(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    queues_create(max_receive_count=2)
    failing = AlwaysFails()
    job = create_job(alpha_staff, "test.fail")

    running = start_worker(handlers={"test.fail": failing})
    wait_for(lambda: queue_counts(dlq=True) == (1, 0), timeout=20)

    row = job_row(job.job_id)
    assert (row.status, row.attempt) == ("FAILED", 2)
    assert row.error == "The job failed 2 times and was given up."
    assert len(failing.calls.started) == 2
    assert running.worker.max_receive_count == 2
    assert queue_counts() == (0, 0)
    assert queue_bodies(dlq=True)[0]["job_id"] == str(job.job_id)


def test_a_permanent_error_fails_the_job_at_once(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    refusing = Refuses()
    job = create_job(alpha_staff, "test.refuse")

    start_worker(handlers={"test.refuse": refusing})
    wait_for(lambda: _finished(job))
    wait_for(lambda: queue_counts() == (0, 0))

    row = job_row(job.job_id)
    assert (row.status, row.attempt, row.error) == ("FAILED", 1, "The input cannot be processed.")
    assert len(refusing.calls.started) == 1
    assert queue_counts(dlq=True) == (0, 0)
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    assert json.loads(snap.document)["error"] == "The input cannot be processed."


def test_a_failed_attempt_is_retried_by_the_next_receive(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    class FailsOnce(Gate):
        def run(self, job: Any, progress: Any) -> dict[str, Any]:
            if job.attempt == 1:
                self.calls.start(job)
                raise ConnectionError("the provider hung up")
            return {"attempt": job.attempt}

    job = create_job(alpha_staff, "test.gate")
    start_worker(handlers={"test.gate": FailsOnce()})
    wait_for(lambda: _finished(job))

    row = job_row(job.job_id)
    assert (row.status, row.attempt, row.result.data) == ("DONE", 2, {"attempt": 2})


def test_a_job_whose_message_was_dead_lettered_unfinished_is_failed_by_the_sweep(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # Given a job whose worker crashed on its last receive: PROCESSING, lease over, message in DLQ
    job = create_job(alpha_staff, "test.gate")
    queue_bodies()  # the message is visible; move it by hand to the DLQ as SQS would
    services.job_claim(job.tenant_id, job_id=job.job_id, lease_owner="crashed", lease_seconds=0.1)
    dlq = dlq_url(KIND)
    assert dlq is not None
    body = JobMessage(job_id=job.job_id, tenant_id=job.tenant_id).encode()
    sqs_client().send_message(QueueUrl=dlq, MessageBody=body)
    sqs_client().purge_queue(QueueUrl=queue_url(KIND))
    time.sleep(0.2)

    start_worker(handlers={"test.gate": Gate()}, dlq_sweep_interval=0.3)
    wait_for(lambda: _finished(job))

    row = job_row(job.job_id)
    assert row.status == "FAILED"
    assert "abandoned" in row.error
    wait_for(lambda: queue_counts(dlq=True) == (0, 0))  # the job is FAILED: its dead letter goes


# --- time limit -------------------------------------------------------------------------------
def test_a_job_past_its_time_limit_fails_its_message_is_deleted_and_its_heartbeat_stops(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    sleeper = Sleeper(seconds=3.5)
    job = create_job(alpha_staff, "test.sleep")
    config = fast_config(
        visibility_timeout=2, lease_seconds=1, heartbeat_interval=0.5, max_runtime=1.5
    )

    running = start_worker(handlers={"test.sleep": sleeper}, config=config)
    wait_for(lambda: _finished(job))
    heartbeats = running.worker.stats.heartbeats

    row = job_row(job.job_id)
    assert (row.status, row.error) == ("FAILED", "The job exceeded its time limit of 1.5 seconds.")
    assert queue_counts() == (0, 0)
    wait_for(sleeper.returned.is_set, timeout=10)  # the handler returns late ...
    time.sleep(0.5)
    assert job_row(job.job_id).status == "FAILED"  # ... and its result is discarded
    assert not JobResult.objects.filter(job__job_id=job.job_id).exists()
    assert running.worker.stats.heartbeats == heartbeats
    assert running.worker.stats.timed_out == 1
    assert queue_counts() == (0, 0)


# --- concurrency ------------------------------------------------------------------------------
# Fifty unfinished jobs of one user: far over the job quota, which is not under test here.
@override_settings(JOB_ACTIVE_MAX_PER_USER=100, JOB_ACTIVE_MAX_PER_TENANT=100)
def test_fifty_jobs_on_a_cap_of_five_never_run_more_than_five_at_once(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    probe = ConcurrencyProbe(seconds=0.15)
    jobs = [create_job(alpha_staff, "test.probe") for _ in range(50)]

    running = start_worker(handlers={"test.probe": probe}, concurrency=9)
    in_flight = []
    while not all(_finished(j) for j in jobs[-5:]) or running.worker.running():
        in_flight.append(queue_counts()[1])
        time.sleep(0.05)
    wait_for(lambda: Job.objects.filter(status="DONE").count() == 50)

    assert running.worker.concurrency == 5
    assert probe.peak == 5
    assert len(probe.calls.started) == 50
    assert max(in_flight) <= 5  # nothing received beyond the free slots (no prefetch)


# --- Redis down at the finish -------------------------------------------------------------------
def test_a_terminal_state_lost_to_a_redis_outage_is_published_when_redis_returns(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    running = start_worker(handlers={"test.gate": gate})
    wait_for(gate.running.is_set)
    topic = Topic.job(job.job_id)
    real_redis = clients.sync_redis()

    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        clients.reset_clients()
        gate.release.set()
        wait_for(lambda: _finished(job))
        wait_for(lambda: len(running.worker.republisher) == 1)
        key = store.keyspace().status_key(alpha_staff.tenant.id, topic)
        assert real_redis.hget(key, "status") == b"PROCESSING"
    clients.reset_clients()

    assert job_status(job.job_id) == "DONE"  # the database write never depended on Redis
    wait_for(lambda: len(running.worker.republisher) == 0)
    snap = store.snapshot(alpha_staff.tenant.id, topic)
    assert snap is not None
    assert snap.status == "DONE"


# --- logging ----------------------------------------------------------------------------------
def test_every_log_line_of_a_job_names_the_job_tenant_attempt_kind_and_duration(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["text"]["format"]))
    handler.addFilter(lambda record: record.threadName.startswith("messaging-job"))
    handler.addFilter(lambda record: setattr(record, "correlation_id", "-") or True)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        job = create_job(alpha_staff, "messaging.send", {**MESSAGE, "recipients": _recipients(2)})
        start_worker()
        wait_for(lambda: _finished(job))
        time.sleep(0.2)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)

    lines = stream.getvalue().splitlines()
    assert any("job started" in line for line in lines)
    assert any("job DONE in" in line for line in lines)
    context = f"job={job.job_id} tenant={alpha_staff.tenant.id} attempt=1 kind=messaging t="
    after_claim = lines[next(i for i, line in enumerate(lines) if "job started" in line) :]
    assert after_claim
    assert all(context in line for line in after_claim), lines
    assert all(f"job={job.job_id} tenant={alpha_staff.tenant.id}" in line for line in lines)


# --- shutdown ---------------------------------------------------------------------------------
def test_stopping_releases_a_running_job_that_outlives_the_grace_period(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    running = start_worker(
        handlers={"test.gate": gate},
        config=replace(fast_config(), visibility_timeout=30),
        grace=0.5,
    )
    wait_for(gate.running.is_set)

    started = time.monotonic()
    running.stop()

    assert time.monotonic() - started < 3
    assert running.exit_code == 0
    wait_for(lambda: gate.calls.ended == ["lease_lost"], timeout=2)  # told at its next update
    row = job_row(job.job_id)
    assert row.status == "PROCESSING"
    assert row.lease_expires_at is not None
    claim = services.job_claim(
        job.tenant_id, job_id=job.job_id, lease_owner="next", lease_seconds=30
    )
    assert claim.result is services.ClaimResult.CLAIMED  # the lease was given back
    assert queue_counts() == (1, 0)  # visible at once, not after 30 s


def test_a_worker_whose_every_slot_is_held_by_an_abandoned_handler_exits_to_be_replaced(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    sleeper = Sleeper(seconds=6)
    job = create_job(alpha_staff, "test.sleep")

    running = start_worker(
        handlers={"test.sleep": sleeper},
        concurrency=1,
        config=fast_config(max_runtime=0.5),
        stuck_exit_after=0.5,
    )
    running.thread.join(timeout=10)

    assert not running.thread.is_alive()
    assert running.exit_code == 3
    assert job_status(job.job_id) == "FAILED"
    assert not sleeper.returned.is_set()  # it left without waiting for the stuck handler
