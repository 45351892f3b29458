"""The runner against real PostgreSQL, Redis and moto's SQS, with workers in threads.

Rows must be committed for worker threads to see them, hence transactional tests throughout.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
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
from tests.support.faultproxy import FaultProxy
from tests.support.handlers import AlwaysFails, ConcurrencyProbe, Gate, Refuses, Sleeper
from tests.support.members import Member
from tests.support.workers import (
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
    # given a messaging job with three addresses, an invalid one and a duplicate
    payload = {**MESSAGE, "recipients": [*_recipients(3), "not-an-address", "STUDENT0@example.com"]}
    job = create_job(alpha_staff, "messaging.send", payload)

    # when a worker runs it
    start_worker()
    wait_for(lambda: _finished(job))

    # then each valid address got one email and the job is DONE with the counts
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
    # given three jobs with a probe handler
    probe = ConcurrencyProbe(seconds=0.05)
    jobs = [create_job(alpha_staff, "test.probe") for _ in range(3)]

    # when a worker runs them
    start_worker(handlers={"test.probe": probe})
    wait_for(lambda: all(_finished(job) for job in jobs))

    # then no job thread held a database connection
    assert len(probe.calls.started) == 3
    assert probe.connections_held == 0


def test_two_copies_of_one_message_run_the_job_once(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a job whose message was sent twice
    job = create_job(alpha_staff, "messaging.send", {**MESSAGE, "recipients": _recipients(4)})
    send_duplicate(job)  # at-least-once delivery: both copies can be received together

    # when a worker receives both copies
    running = start_worker(config=fast_config(visibility_timeout=2, lease_seconds=1))
    wait_for(lambda: _finished(job))
    wait_for(lambda: queue_counts() == (0, 0), timeout=20)  # the copy comes back and is dropped

    # then the job ran once and the copy was dropped
    assert len(mail.outbox) == 4
    assert JobResult.objects.filter(job__job_id=job.job_id).count() == 1
    assert job_row(job.job_id).attempt == 1
    assert running.worker.stats.duplicates == 1


def test_a_redelivery_after_done_changes_nothing_and_sends_nothing(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a job a worker finished
    job = create_job(alpha_staff, "messaging.send", {**MESSAGE, "recipients": _recipients(2)})
    running = start_worker()
    wait_for(lambda: _finished(job))
    topic = Topic.job(job.job_id)
    done = store.snapshot(alpha_staff.tenant.id, topic)
    assert done is not None
    assert done.status == "DONE"

    # when its message is delivered again
    send_duplicate(job)
    wait_for(lambda: running.worker.stats.duplicates == 1)

    # then nothing more is sent and the state is unchanged
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
    # given a worker paused past its 1 s lease (its heartbeat is not due for another 20 s)
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

    # when the zombie's handler completes and it tries to finish the job
    gate.release.set()
    wait_for(lambda: gate.calls.ended == ["done"])
    wait_for(lambda: zombie.worker.stats.lost == 1)

    # then the finish is refused and the message left alone for the attempt that holds the job
    row = job_row(job.job_id)
    assert (row.status, row.attempt) == ("PROCESSING", 2)
    assert not JobResult.objects.filter(job__job_id=job.job_id).exists()
    assert zombie.worker.stats.done == 0
    assert queue_counts() == (0, 1)


def test_a_worker_learns_at_its_next_heartbeat_that_its_lease_was_taken_over(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a worker whose heartbeat comes too late to keep its 1 s lease (a paused process)
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    zombie = start_worker(
        handlers={"test.gate": gate},
        config=fast_config(visibility_timeout=6, lease_seconds=1, heartbeat_interval=2.5),
    )
    wait_for(gate.running.is_set)

    # when another attempt takes the job over after the lease ended, and finishes it
    time.sleep(1.2)
    takeover = services.job_claim(
        alpha_staff.tenant.id, job_id=job.job_id, lease_owner="successor", lease_seconds=30
    )
    assert takeover.result is services.ClaimResult.CLAIMED
    wait_for(lambda: gate.calls.ended == ["lease_lost"], timeout=10)
    finished = services.job_finish(
        alpha_staff.tenant.id, job_id=job.job_id, attempt=2, status="DONE", result={"by": 2}
    )

    # then the zombie learnt at its next heartbeat that it lost, and its outcome counts for nothing
    assert finished is True
    row = job_row(job.job_id)
    assert (row.status, row.attempt, row.result.data) == ("DONE", 2, {"by": 2})
    assert zombie.worker.stats.lost == 1
    assert zombie.worker.stats.done == 0
    gate.release.set()


def test_a_heartbeat_keeps_a_job_longer_than_its_visibility_timeout_exclusive(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a long job on a short visibility timeout, and two workers
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    config = fast_config(visibility_timeout=2, lease_seconds=1, heartbeat_interval=0.5)
    first = start_worker(handlers={"test.gate": gate}, config=config)
    second = start_worker(handlers={"test.gate": gate}, config=config)
    wait_for(gate.running.is_set)

    # when the job runs for more than twice the visibility timeout
    samples = []
    deadline = time.monotonic() + 4.5  # more than twice the visibility timeout
    while time.monotonic() < deadline:
        samples.append(queue_counts())
        time.sleep(0.25)
    gate.release.set()
    wait_for(lambda: _finished(job))

    # then the message never became visible to the second worker
    assert set(samples) == {(0, 1)}  # never visible to the second worker
    assert gate.calls.started == [(str(job.job_id), 1)]
    assert job_row(job.job_id).status == "DONE"
    assert first.worker.stats.heartbeats + second.worker.stats.heartbeats >= 6


@contextlib.contextmanager
def _redis_restored(url: str) -> Iterator[None]:
    """Point this process's Redis clients back at ``url`` when the block ends."""
    try:
        yield
    finally:
        settings.REDIS_URL = url
        clients.reset_clients()


def test_a_redis_that_hangs_delays_no_heartbeat_and_the_message_stays_with_its_attempt(
    alpha_staff: Member, start_worker: StartWorker, settings: Any
) -> None:
    # given a job running on a short visibility timeout, its worker checking cancel flags in
    # Redis five times a second, and Redis reached through a proxy with a socket timeout
    # longer than the visibility timeout
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    real_url = settings.REDIS_URL
    redis_port = int(real_url.rsplit(":", 1)[1].split("/", 1)[0])
    with FaultProxy("127.0.0.1", redis_port) as proxy, _redis_restored(real_url):
        settings.REDIS_URL = settings.REDIS_URL.replace(f":{redis_port}/", f":{proxy.port}/")
        settings.REDIS_SOCKET_TIMEOUT = 3
        clients.reset_clients()
        config = fast_config(visibility_timeout=2, lease_seconds=2, heartbeat_interval=0.5)
        first = start_worker(handlers={"test.gate": gate}, config=config, cancel_check_interval=0.2)
        start_worker(handlers={"test.gate": gate}, config=config)  # would take a redelivery
        wait_for(gate.running.is_set)
        beats = first.worker.stats.heartbeats

        # when Redis stops answering (every command waits out its socket timeout) for more
        # than three visibility timeouts
        proxy.blackhole()
        samples = []
        deadline = time.monotonic() + 6.5
        while time.monotonic() < deadline:
            samples.append(queue_counts())
            time.sleep(0.25)
        beats_while_hung = first.worker.stats.heartbeats - beats
        proxy.pass_()
        gate.release.set()
        wait_for(lambda: _finished(job), timeout=30)

    # then the heartbeats went on (every 0.5 s), the message never became visible again, and
    # the one attempt ran the job to DONE
    assert beats_while_hung >= 8
    assert set(samples) == {(0, 1)}
    assert first.worker.stats.lost == 0
    assert gate.calls.started == [(str(job.job_id), 1)]
    assert job_row(job.job_id).status == "DONE"


# --- errors -----------------------------------------------------------------------------------
def test_a_poison_message_goes_to_the_dead_letter_queue_and_its_job_fails(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a queue that dead-letters after two receives and a job whose handler always fails
    queues_create(max_receive_count=2)
    failing = AlwaysFails()
    job = create_job(alpha_staff, "test.fail")

    # when the worker runs it until its message is dead-lettered
    running = start_worker(handlers={"test.fail": failing})
    wait_for(lambda: queue_counts(dlq=True) == (1, 0), timeout=20)

    # then it failed after two attempts and the message is in the DLQ
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
    # given a job whose handler refuses its input
    refusing = Refuses()
    job = create_job(alpha_staff, "test.refuse")

    # when a worker runs it
    start_worker(handlers={"test.refuse": refusing})
    wait_for(lambda: _finished(job))
    wait_for(lambda: queue_counts() == (0, 0))

    # then it fails on attempt 1 with the handler's message, nothing dead-lettered
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
    # given a handler that fails on attempt 1 only
    class FailsOnce(Gate):
        def run(self, job: Any, progress: Any) -> dict[str, Any]:
            if job.attempt == 1:
                self.calls.start(job)
                raise ConnectionError("the provider hung up")
            return {"attempt": job.attempt}

    job = create_job(alpha_staff, "test.gate")

    # when a worker runs the job
    start_worker(handlers={"test.gate": FailsOnce()})
    wait_for(lambda: _finished(job))

    # then the next receive's attempt finishes it
    row = job_row(job.job_id)
    assert (row.status, row.attempt, row.result.data) == ("DONE", 2, {"attempt": 2})


def test_a_job_whose_message_was_dead_lettered_unfinished_is_failed_by_the_sweep(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a job whose worker crashed on its last receive: PROCESSING, lease over, message in DLQ
    job = create_job(alpha_staff, "test.gate")
    queue_bodies()  # the message is visible; move it by hand to the DLQ as SQS would
    services.job_claim(job.tenant_id, job_id=job.job_id, lease_owner="crashed", lease_seconds=0.1)
    dlq = dlq_url(KIND)
    assert dlq is not None
    body = JobMessage(job_id=job.job_id, tenant_id=job.tenant_id).encode()
    sqs_client().send_message(QueueUrl=dlq, MessageBody=body)
    sqs_client().purge_queue(QueueUrl=queue_url(KIND))
    time.sleep(0.2)

    # when a worker with a fast dead-letter sweep starts
    start_worker(handlers={"test.gate": Gate()}, dlq_sweep_interval=0.3)
    wait_for(lambda: _finished(job))

    # then the sweep failed the job as abandoned and left the message for operators
    row = job_row(job.job_id)
    assert row.status == "FAILED"
    assert "abandoned" in row.error
    wait_for(lambda: queue_counts(dlq=True) == (0, 0))  # the job is FAILED: its dead letter goes


# --- time limit -------------------------------------------------------------------------------
def test_a_job_past_its_time_limit_fails_its_message_is_deleted_and_its_heartbeat_stops(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a handler stuck for 3.5 s and a time limit of 1.5 s
    sleeper = Sleeper(seconds=3.5)
    job = create_job(alpha_staff, "test.sleep")
    config = fast_config(
        visibility_timeout=2, lease_seconds=1, heartbeat_interval=0.5, max_runtime=1.5
    )

    # when a worker runs it
    running = start_worker(handlers={"test.sleep": sleeper}, config=config)
    wait_for(lambda: _finished(job))
    heartbeats = running.worker.stats.heartbeats

    # then the job fails at the limit, the late result is discarded, the heartbeat stopped
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
    # given fifty jobs and a worker asked for 9 slots
    probe = ConcurrencyProbe(seconds=0.15)
    jobs = [create_job(alpha_staff, "test.probe") for _ in range(50)]

    # when it runs them all
    running = start_worker(handlers={"test.probe": probe}, concurrency=9)
    in_flight = []
    while not all(_finished(j) for j in jobs[-5:]) or running.worker.running():
        in_flight.append(queue_counts()[1])
        time.sleep(0.05)
    wait_for(lambda: Job.objects.filter(status="DONE").count() == 50)

    # then never more than five ran or were in flight at once
    assert running.worker.concurrency == 5
    assert probe.peak == 5
    assert len(probe.calls.started) == 50
    assert max(in_flight) <= 5  # nothing received beyond the free slots (no prefetch)


# --- Redis down at the finish -------------------------------------------------------------------
def test_a_terminal_state_lost_to_a_redis_outage_is_published_when_redis_returns(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a job running in a worker
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    running = start_worker(handlers={"test.gate": gate})
    wait_for(gate.running.is_set)
    topic = Topic.job(job.job_id)
    real_redis = clients.sync_redis()

    # when Redis goes away while the job finishes, then comes back
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        clients.reset_clients()
        gate.release.set()
        wait_for(lambda: _finished(job))
        wait_for(lambda: len(running.worker.republisher) == 1)
        key = store.keyspace().status_key(alpha_staff.tenant.id, topic)
        assert real_redis.hget(key, "status") == b"PROCESSING"
    clients.reset_clients()

    # then the database said DONE all along and the state is published once Redis answers
    assert job_status(job.job_id) == "DONE"  # the database write never depended on Redis
    wait_for(lambda: len(running.worker.republisher) == 0)
    snap = store.snapshot(alpha_staff.tenant.id, topic)
    assert snap is not None
    assert snap.status == "DONE"


# --- logging ----------------------------------------------------------------------------------
def test_every_log_line_of_a_job_names_the_job_tenant_attempt_kind_and_duration(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a buffer handler on the job threads' log lines
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
        # when a messaging job runs
        job = create_job(alpha_staff, "messaging.send", {**MESSAGE, "recipients": _recipients(2)})
        start_worker()
        wait_for(lambda: _finished(job))
        time.sleep(0.2)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)

    # then every line after the claim names the job, tenant, attempt and kind
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
    # given a job running with a 30 s visibility and a 0.5 s grace period
    gate = Gate()
    job = create_job(alpha_staff, "test.gate")
    running = start_worker(
        handlers={"test.gate": gate},
        config=replace(fast_config(), visibility_timeout=30),
        grace=0.5,
    )
    wait_for(gate.running.is_set)

    # when the worker stops
    started = time.monotonic()
    running.stop()

    # then it exits quickly, tells the handler, and gives the lease and the message back
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
    # given a handler stuck for 6 s on the worker's only slot, with a 0.5 s limit
    sleeper = Sleeper(seconds=6)
    job = create_job(alpha_staff, "test.sleep")

    # when the worker runs it
    running = start_worker(
        handlers={"test.sleep": sleeper},
        concurrency=1,
        config=fast_config(max_runtime=0.5),
        stuck_exit_after=0.5,
    )
    running.thread.join(timeout=10)

    # then the worker exits with 3 to be replaced, without waiting for the handler
    assert not running.thread.is_alive()
    assert running.exit_code == 3
    assert job_status(job.job_id) == "FAILED"
    assert not sleeper.returned.is_set()  # it left without waiting for the stuck handler
