"""The workers' metrics after real work: jobs run by a real worker against PostgreSQL, Redis
and moto's SQS, the outbox relay, and the dead-letter sweep. Read from this process's
registry (the workers run in threads here); tests/scale/test_metrics_scrape.py scrapes a
worker process through ``serve_metrics``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from domains.common.aws import sqs_client
from domains.jobs.dispatch import queue_url
from domains.jobs.models import Job
from tests.support.handlers import Gate
from tests.support.members import Member
from tests.support.metrics import sample
from tests.support.scale import FaultProxy
from tests.support.workers import (
    KIND,
    ThreadWorker,
    create_job,
    job_status,
    send_duplicate,
    wait_for,
)
from workers.config import dlq_url
from workers.relay import Relay
from workers.sqs import QueueClient

pytestmark = pytest.mark.django_db(transaction=True)
StartWorker = Callable[..., ThreadWorker]
K = str(KIND)


def test_a_job_shows_in_busy_slots_then_in_jobs_done_and_their_duration(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a worker with two slots and a job that runs until released
    gate = Gate()
    done_before = sample("academy_worker_jobs_total", kind=K, outcome="done")
    timed_before = sample("academy_worker_job_duration_seconds_count", kind=K, outcome="done")
    job = create_job(alpha_staff, "test.gate")
    running = start_worker(handlers={"test.gate": gate}, concurrency=2)

    # when the job runs, then is released and finishes
    assert gate.running.wait(15)
    busy_while_running = sample("academy_worker_busy_slots", kind=K)
    slots = sample("academy_worker_slots", kind=K)
    gate.release.set()
    wait_for(lambda: job_status(job.job_id) == "DONE")
    wait_for(lambda: sample("academy_worker_busy_slots", kind=K) == 0)
    running.stop()

    # then one slot was busy of two, and the job counts once as done, with its duration
    assert (busy_while_running, slots) == (1, 2)
    assert sample("academy_worker_jobs_total", kind=K, outcome="done") == done_before + 1
    assert (
        sample("academy_worker_job_duration_seconds_count", kind=K, outcome="done")
        == timed_before + 1
    )
    assert sample("academy_worker_job_duration_seconds_sum", kind=K, outcome="done") > 0
    assert sample("academy_worker_slots", kind=K) == 0  # the stopped worker gave its slots back


def test_a_redelivery_of_a_finished_job_counts_as_a_duplicate(
    alpha_staff: Member, start_worker: StartWorker
) -> None:
    # given a finished job
    job = create_job(alpha_staff, "test.probe")
    running = start_worker()
    wait_for(lambda: job_status(job.job_id) == "DONE")
    before = sample("academy_worker_jobs_total", kind=K, outcome="duplicate")
    done = sample("academy_worker_jobs_total", kind=K, outcome="done")

    # when its message is delivered again
    send_duplicate(job)
    wait_for(lambda: sample("academy_worker_jobs_total", kind=K, outcome="duplicate") == before + 1)
    running.stop()

    # then it counted as a duplicate, not as a second job done
    assert sample("academy_worker_jobs_total", kind=K, outcome="done") == done


def test_the_relay_reports_its_backlog(alpha_staff: Member) -> None:
    # given two jobs whose messages never went out (rows only) and none unpublished
    for _ in range(2):
        Job.objects.create(
            tenant=alpha_staff.tenant, job_type="test.probe", created_by=alpha_staff.user
        )

    # when the relay makes a pass that leaves them to their own sender (a long grace)
    Relay(interval=1, batch=10, grace=3600).tick()

    # then the backlog says two unsent messages and no unpublished state
    assert sample("academy_outbox_backlog", part="unsent") == 2
    assert sample("academy_outbox_backlog", part="unpublished") == 0


def test_the_dead_letter_sweep_reports_the_dlq_depth(start_worker: StartWorker) -> None:
    # given three dead letters an operator must look at (they name no job, so they are kept)
    url = dlq_url(KIND)
    assert url is not None
    for n in range(3):
        sqs_client().send_message(QueueUrl=url, MessageBody=f"not a job message {n}")

    # when a worker's supervisor runs its dead-letter sweep
    running = start_worker(dlq_sweep_interval=0.2)
    wait_for(lambda: sample("academy_dlq_depth", kind=K) == 3, timeout=20)
    running.stop()

    # then the depth gauge showed the three kept messages (what an alarm on it would see)
    assert sample("academy_dlq_depth", kind=K) == 3


def test_heartbeats_that_sqs_refuses_are_counted_by_step(
    alpha_staff: Member, start_worker: StartWorker, settings: Any
) -> None:
    # given a worker whose queue client reaches moto through a fault proxy, running a job
    gate = Gate()
    moto_port = urlsplit(settings.AWS_ENDPOINT_URL).port
    assert moto_port is not None
    before = sample("academy_worker_heartbeat_failures_total", kind=K, step="visibility")
    lease_before = sample("academy_worker_heartbeat_failures_total", kind=K, step="lease")
    with FaultProxy("127.0.0.1", moto_port) as proxy:
        real = settings.AWS_ENDPOINT_URL
        settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{proxy.port}"
        sqs_client.cache_clear()
        queue = QueueClient(queue_url(KIND))  # the project's own client, through the proxy
        settings.AWS_ENDPOINT_URL = real
        sqs_client.cache_clear()
        job = create_job(alpha_staff, "test.gate")
        running = start_worker(handlers={"test.gate": gate}, queue=queue)
        assert gate.running.wait(15)

        # when SQS refuses connections for a few heartbeats, then answers again
        proxy.drop()
        wait_for(
            lambda: (
                sample("academy_worker_heartbeat_failures_total", kind=K, step="visibility")
                >= before + 2
            ),
            timeout=20,
        )
        proxy.pass_()
        gate.release.set()
        wait_for(lambda: job_status(job.job_id) in ("DONE", "FAILED"), timeout=30)
        running.stop()

    # then the failed heartbeats were counted at the visibility step, none at the lease step
    assert (
        sample("academy_worker_heartbeat_failures_total", kind=K, step="visibility") >= before + 2
    )
    assert sample("academy_worker_heartbeat_failures_total", kind=K, step="lease") == lease_before
