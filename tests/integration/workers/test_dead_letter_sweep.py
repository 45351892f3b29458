"""The dead-letter sweep against real PostgreSQL, Redis and moto's SQS: it empties a DLQ longer
than one receive batch, removes dead letters of terminal jobs, and fails a job whose worker
died on its last receive within one sweep.

Dead letters are put into the DLQ by hand (as SQS moves them) except where a test lets moto's
redrive move the message itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from domains.common.aws import sqs_client
from domains.jobs import services
from domains.jobs.dispatch import JobMessage, queue_url
from domains.jobs.models import Job
from realtime import store
from realtime.keys import Topic
from tests.conftest import Member
from tests.integration.workers.conftest import (
    KIND,
    ThreadWorker,
    create_job,
    job_row,
    queue_counts,
    wait_for,
)
from workers.config import dlq_url
from workers.deadletters import DeadLetterSweep
from workers.sqs import QueueClient, queues_create

pytestmark = pytest.mark.django_db(transaction=True)
StartWorker = Callable[..., ThreadWorker]
ABANDONED = "The job was abandoned after repeated failed attempts."


def _dead_letter(job: Job, *, tenant_id: int | None = None) -> None:
    url = dlq_url(KIND)
    assert url is not None
    body = JobMessage(job_id=job.job_id, tenant_id=tenant_id or job.tenant_id).encode()
    sqs_client().send_message(QueueUrl=url, MessageBody=body)


def _done_job(member: Member) -> Job:
    job = create_job(member)
    services.job_claim(job.tenant_id, job_id=job.job_id, lease_owner="w", lease_seconds=30)
    services.job_finish(job.tenant_id, job_id=job.job_id, attempt=1, status="DONE", result={})
    return job


def _crashed_job(member: Member) -> Job:
    """PROCESSING, its lease already over: its worker died."""
    job = create_job(member)
    services.job_claim(job.tenant_id, job_id=job.job_id, lease_owner="crashed", lease_seconds=0.1)
    return job


def _sweep() -> DeadLetterSweep:
    url = dlq_url(KIND)
    assert url is not None
    return DeadLetterSweep(dlq=QueueClient(url), kind=KIND)


def test_one_sweep_empties_a_dead_letter_queue_longer_than_one_receive_batch(
    alpha_staff: Member,
) -> None:
    # given 24 dead letters of DONE jobs, one of a job whose worker died, one of a PENDING job
    done = [_done_job(alpha_staff) for _ in range(24)]
    crashed, pending = _crashed_job(alpha_staff), create_job(alpha_staff)
    for job in [*done, crashed, pending]:
        _dead_letter(job)
    sqs_client().purge_queue(QueueUrl=queue_url(KIND))
    time.sleep(0.2)  # the crashed worker's lease ends
    assert queue_counts(dlq=True) == (26, 0)

    # when one sweep runs
    report = _sweep().sweep()

    # then every dead letter is gone, the two unfinished jobs FAILED, the DONE ones untouched
    assert (report.received, report.deleted, report.failed, report.kept) == (26, 26, 2, 0)
    assert report.exhausted is False
    assert queue_counts(dlq=True) == (0, 0)
    for job in (crashed, pending):
        row = job_row(job.job_id)
        assert (row.status, row.error) == ("FAILED", ABANDONED)
        snap = store.snapshot(job.tenant_id, Topic.job(job.job_id))
        assert snap is not None
        assert snap.status == "FAILED"
    statuses = set(Job.objects.filter(pk__in=[j.pk for j in done]).values_list("status", "attempt"))
    assert statuses == {("DONE", 1)}


def test_a_sweep_keeps_a_leased_jobs_dead_letter_and_never_touches_another_tenants_job(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given a dead letter of a job an attempt still holds, and one naming alpha's crashed job
    # under beta's tenant id
    leased = create_job(alpha_staff)
    services.job_claim(leased.tenant_id, job_id=leased.job_id, lease_owner="w", lease_seconds=300)
    crashed = _crashed_job(alpha_staff)
    _dead_letter(leased)
    _dead_letter(crashed, tenant_id=beta_staff.tenant.id)
    sqs_client().purge_queue(QueueUrl=queue_url(KIND))
    time.sleep(0.2)

    # when one sweep runs
    report = _sweep().sweep()

    # then the leased job's dead letter waits for a later sweep; the other tenant's id changes
    # nothing in alpha, and its dead letter (no such job in beta) is removed
    assert (report.received, report.deleted, report.failed, report.kept) == (2, 1, 0, 1)
    assert job_row(leased.job_id).status == "PROCESSING"
    assert job_row(crashed.job_id).status == "PROCESSING"
    assert queue_counts(dlq=True) == (1, 0)


def test_a_sweep_stopped_by_its_bound_leaves_the_rest_for_the_next_one(
    alpha_staff: Member,
) -> None:
    # given 15 dead letters of DONE jobs and a sweep bounded to 10 messages
    for _ in range(15):
        _dead_letter(_done_job(alpha_staff))
    url = dlq_url(KIND)
    assert url is not None
    sweep = DeadLetterSweep(dlq=QueueClient(url), kind=KIND, max_messages=10)

    # when two sweeps run
    first = sweep.sweep()
    second = sweep.sweep()

    # then the first stops at its bound and says so, the second finishes the queue
    assert (first.received, first.deleted, first.exhausted) == (10, 10, True)
    assert (second.received, second.deleted, second.exhausted) == (5, 5, False)
    assert queue_counts(dlq=True) == (0, 0)


def test_a_worker_fails_a_job_whose_worker_died_on_its_last_receive_at_its_first_sweep(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given maxReceiveCount 1 and a worker that claimed the job on that receive and died
    queues_create(max_receive_count=1)
    job = create_job(alpha_staff)
    client = sqs_client()
    received = client.receive_message(
        QueueUrl=queue_url(KIND), MaxNumberOfMessages=1, VisibilityTimeout=1
    )
    assert len(received["Messages"]) == 1
    services.job_claim(job.tenant_id, job_id=job.job_id, lease_owner="died", lease_seconds=0.5)
    time.sleep(1.2)
    # ... so the next receive makes SQS move its message to the dead-letter queue
    moved = client.receive_message(QueueUrl=queue_url(KIND), WaitTimeSeconds=0)
    assert moved.get("Messages", []) == []
    # ... behind 11 dead letters of DONE jobs (more than one receive batch)
    done = [_done_job(alpha_staff) for _ in range(11)]
    for finished in done:
        _dead_letter(finished)
    assert queue_counts(dlq=True) == (12, 0)
    assert job_row(job.job_id).status == "PROCESSING"

    # when a worker starts whose next sweep is an hour away (only its first sweep runs)
    running = start_worker(dlq_sweep_interval=3600)

    # then that one sweep failed the job and emptied the dead-letter queue
    wait_for(lambda: job_row(job.job_id).status == "FAILED", timeout=10)
    wait_for(lambda: queue_counts(dlq=True) == (0, 0), timeout=5)
    assert job_row(job.job_id).error == ABANDONED
    wait_for(lambda: running.worker.stats.dead_letters_deleted == 12, timeout=5)
    assert running.worker.stats.failed == 1
    assert {row.status for row in Job.objects.filter(pk__in=[d.pk for d in done])} == {"DONE"}
