"""Real ``manage.py run_worker`` processes: killed, stopped, and counted in pg_stat_activity."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from domains.jobs.models import Job, JobResult
from realtime import store
from realtime.keys import Topic
from tests.support.members import Member
from tests.support.workers import (
    WorkerProcess,
    create_job,
    job_row,
    job_status,
    queue_bodies,
    queue_counts,
    sent_emails,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
StartProcess = Callable[..., WorkerProcess]


def _message(recipients: int) -> dict[str, object]:
    return {
        "subject": "Hello",
        "body": "Class at ten.",
        "recipients": [f"s{i}@example.com" for i in range(recipients)],
    }


def test_a_worker_killed_mid_job_is_replaced_and_the_job_ends_done_once(
    alpha_staff: Member, worker_process: StartProcess, tmp_path: Path
) -> None:
    # given a worker half-way through a job (one email per batch, 0.4 s apart)
    pace = {"MESSAGING_BATCH_SIZE": "1", "MESSAGING_SEND_INTERVAL": "0.4"}
    job = create_job(alpha_staff, "messaging.send", _message(8))
    first = worker_process(**pace)
    wait_for(lambda: len(sent_emails(tmp_path / "emails")) >= 2, timeout=30)

    # when it is killed without any chance to clean up, and another worker starts
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=10)
    assert job_status(job.job_id) == "PROCESSING"
    second = worker_process(**pace)
    wait_for(lambda: job_status(job.job_id) == "DONE", timeout=30)

    # then the message came back, the next attempt took over after the lease ended, once
    row = job_row(job.job_id)
    assert row.attempt == 2
    assert row.result.data == {"sent": 8, "failed": 0, "failed_addresses": []}
    assert JobResult.objects.filter(job__job_id=job.job_id).count() == 1
    assert set(sent_emails(tmp_path / "emails")) == {f"s{i}@example.com" for i in range(8)}
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    assert snap.status == "DONE"
    wait_for(lambda: queue_counts() == (0, 0))
    second.popen.send_signal(signal.SIGTERM)
    assert second.popen.wait(timeout=15) == 0


# Fifty unfinished jobs of one user: far over the job quota, which is not under test here.
@override_settings(JOB_ACTIVE_MAX_PER_USER=100, JOB_ACTIVE_MAX_PER_TENANT=100)
def test_a_worker_process_caps_its_slots_and_its_database_connections(
    alpha_staff: Member, worker_process: StartProcess
) -> None:
    # given thirty jobs and a worker process asked for 9 slots, its pool allowed 20
    app = f"wk-test-{uuid.uuid4().hex[:8]}"
    jobs = [create_job(alpha_staff, "messaging.send", _message(3)) for _ in range(30)]

    process = worker_process(
        "--concurrency",
        "9",
        DB_APPLICATION_NAME=app,
        WORKER_DB_POOL_MAX_SIZE="20",
        MESSAGING_BATCH_SIZE="1",
        MESSAGING_SEND_INTERVAL="0.1",
    )

    # when the database is watched until every job is DONE
    connections, processing = [], []
    backends: set[int] = set()
    deadline = time.monotonic() + 60
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [app])
            pids = [row[0] for row in cursor.fetchall()]
            connections.append(len(pids))
            backends.update(pids)
            cursor.execute("SELECT count(*) FROM jobs_job WHERE status = 'PROCESSING'")
            processing.append(cursor.fetchone()[0])
            cursor.execute("SELECT count(*) FROM jobs_job WHERE status = 'DONE'")
            if cursor.fetchone()[0] == len(jobs):
                break
            time.sleep(0.02)
    process.popen.send_signal(signal.SIGTERM)

    # then the slots were capped at five and the connections at slots + 1
    assert process.popen.wait(timeout=15) == 0
    assert Job.objects.filter(status="DONE").count() == 30
    assert "using 5" in process.output()  # asked for 9, capped with a warning
    assert max(processing) == 5
    assert 1 <= max(connections) <= 6  # slots + 1
    # the pool was narrowed to slots + 1, and its connections served every job: 60 claims and
    # finishes started no more PostgreSQL backends than that
    assert "db_pool=6" in process.output()
    assert 1 <= len(backends) <= 6


def test_sigterm_releases_unstarted_messages_at_once_and_running_jobs_after_the_grace(
    alpha_staff: Member, worker_process: StartProcess
) -> None:
    # given a worker with long visibility (30 s) running a long and a short job, one slot free
    long_job = create_job(alpha_staff, "messaging.send", _message(10))  # ~4.5 s
    short_job = create_job(alpha_staff, "messaging.send", _message(3))  # ~1 s
    process = worker_process(
        "--concurrency",
        "3",
        SQS_WAIT_TIME_SECONDS="5",
        WORKER_MESSAGING_VISIBILITY_TIMEOUT="30",
        WORKER_MESSAGING_LEASE_SECONDS="29",
        WORKER_MESSAGING_HEARTBEAT_INTERVAL="10",
        WORKER_SHUTDOWN_GRACE="2",
        MESSAGING_BATCH_SIZE="1",
        MESSAGING_SEND_INTERVAL="0.5",
    )
    wait_for(lambda: job_status(long_job.job_id) == job_status(short_job.job_id) == "PROCESSING")
    time.sleep(0.3)  # the poller is now long-polling for its free slot

    # when it is told to stop, and a message arrives during its last long poll
    process.popen.send_signal(signal.SIGTERM)
    late_job = create_job(alpha_staff, "messaging.send", _message(1))
    code = process.popen.wait(timeout=20)

    # then it exits cleanly after the grace period (not after the long job), having finished
    # what it could
    assert code == 0
    assert job_status(short_job.job_id) == "DONE"
    assert job_status(late_job.job_id) == "PENDING"
    assert "released 1 of 1 unstarted message(s)" in process.output()
    # and released what it could not finish: lease ended, message visible now, not in 30 s
    row = job_row(long_job.job_id)
    assert row.status == "PROCESSING"
    assert row.lease_expires_at is not None
    assert row.lease_expires_at <= timezone.now()
    assert queue_counts() == (2, 0)
    assert {body["job_id"] for body in queue_bodies()} == {
        str(long_job.job_id),
        str(late_job.job_id),
    }
