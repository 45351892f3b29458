"""A lost terminal publish never leaves a topic showing PROCESSING: the job row records whether
its terminal state reached Redis, and the relay republishes those that did not
(docs/adr/0011-the-job-row-is-the-outbox.md). Also: the migration that marks existing rows,
and the relay as the real ``manage.py relay_outbox`` process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from domains.jobs import repository, services
from domains.jobs.models import Job, JobStatus
from realtime import store
from realtime.keys import Topic
from tests.support.members import Member
from tests.support.workers import (
    BASE_DIR,
    Outage,
    create_job,
    database_url,
    job_row,
    wait_for,
)
from workers.relay import Relay

pytestmark = pytest.mark.django_db(transaction=True)


def claimed(member: Member) -> Job:
    """A job created, queued and claimed by an attempt (PROCESSING in the record and Redis)."""
    job = create_job(member, "test.probe")
    claim = services.job_claim(
        member.tenant.id, job_id=job.job_id, lease_owner="test", lease_seconds=60
    )
    assert claim.job is not None
    return job_row(job.job_id)


def relay_once() -> int:
    return Relay(interval=1, batch=100, grace=0).tick().republished


def test_a_finish_whose_state_reached_redis_is_recorded_as_published(alpha_staff: Member) -> None:
    # given a running job
    job = claimed(alpha_staff)
    assert job.terminal_published_at is None

    # when it finishes while Redis answers
    services.job_finish(
        alpha_staff.tenant.id,
        job_id=job.job_id,
        attempt=1,
        status=JobStatus.DONE,
        result={"ok": True},
    )

    # then the row says so, and the relay finds nothing to republish
    assert job_row(job.job_id).terminal_published_at is not None
    assert relay_once() == 0


def test_a_terminal_state_lost_to_a_redis_outage_is_republished_by_the_relay(
    alpha_staff: Member, redis_down: Outage
) -> None:
    # given a running job, shown PROCESSING, that finishes while Redis is unreachable
    redis_down.end()
    job = claimed(alpha_staff)
    topic = Topic.job(job.job_id)
    redis_down.start()
    finished = services.job_finish(
        alpha_staff.tenant.id,
        job_id=job.job_id,
        attempt=1,
        status=JobStatus.DONE,
        result={"rows": 3},
    )
    redis_down.end()
    assert finished
    assert job_row(job.job_id).terminal_published_at is None
    snap = store.snapshot(alpha_staff.tenant.id, topic)
    assert snap is not None
    assert snap.status == "PROCESSING"  # what a watcher would see for hours without the sweep

    # when the relay passes once Redis answers (no worker involved: nothing kept in memory)
    republished = relay_once()

    # then Redis shows the record's terminal state with its result, and the row records it
    assert republished == 1
    snap = store.snapshot(alpha_staff.tenant.id, topic)
    assert snap is not None
    assert snap.status == "DONE"
    assert '"rows":3' in snap.document.replace(" ", "")
    assert job_row(job.job_id).terminal_published_at is not None
    assert relay_once() == 0


def test_while_redis_is_down_the_sweep_keeps_the_job_for_later(
    alpha_staff: Member, redis_down: Outage
) -> None:
    # given a job that failed in the record while Redis was down, so nothing reached Redis
    with transaction.atomic():
        job = repository.job_insert(
            alpha_staff.tenant.id,
            job_type="test.probe",
            payload={},
            created_by_id=alpha_staff.user.id,
            idempotency_key="",
        )
    Job.objects.filter(job_id=job.job_id).update(
        status=JobStatus.FAILED, error="boom", finished_at=job.created_at
    )

    # when the relay passes while Redis is still down, and again once it is back
    during = relay_once()
    redis_down.end()
    after = relay_once()

    # then the first pass published nothing and recorded nothing; the second did both
    assert during == 0
    assert after == 1
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    assert snap.status == "FAILED"
    assert job_row(job.job_id).terminal_published_at is not None


# --- the relay as a process -------------------------------------------------------------------
def test_the_relay_command_runs_as_its_own_process_and_stops_cleanly_on_sigterm(
    alpha_staff: Member, tmp_path: Path
) -> None:
    # given a dead process's unsent job and a finished job whose terminal state never reached Redis
    with transaction.atomic():
        unsent = repository.job_insert(
            alpha_staff.tenant.id,
            job_type="messaging.send",
            payload={"subject": "s", "body": "b", "recipients": ["a@example.com"]},
            created_by_id=alpha_staff.user.id,
            idempotency_key="",
        )
        unpublished = repository.job_insert(
            alpha_staff.tenant.id,
            job_type="test.probe",
            payload={},
            created_by_id=alpha_staff.user.id,
            idempotency_key="",
        )
    Job.objects.filter(job_id=unpublished.job_id).update(
        status=JobStatus.FAILED, error="x", finished_at=unpublished.created_at
    )
    log = tmp_path / "relay.log"

    # when `manage.py relay_outbox` runs, then gets SIGTERM
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "relay_outbox", "--interval", "0.2", "--grace", "0"],
            cwd=BASE_DIR,
            env={
                **os.environ,
                "DJANGO_ENV": "test",
                "DATABASE_URL": database_url(),
                "PYTHONPATH": str(BASE_DIR),
                "LOG_LEVEL": "INFO",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: job_row(unsent.job_id).message_sent_at is not None, timeout=30)
        wait_for(lambda: job_row(unpublished.job_id).terminal_published_at is not None, timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)

    # then it sent the message, republished the state, and exited 0
    assert code == 0, log.read_text(errors="replace")
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(unpublished.job_id))
    assert snap is not None
    assert snap.status == "FAILED"


# --- the migration ----------------------------------------------------------------------------
def _migrate(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("jobs", target)])


def _migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("jobs"))


def test_the_migration_counts_existing_rows_as_sent_and_terminal_ones_as_published(
    alpha_staff: Member,
) -> None:
    # given rows written before the outbox existed, one in each status
    _migrate("0002_job_indexes")
    try:
        old = MigrationExecutor(connection).loader.project_state(("jobs", "0002_job_indexes")).apps
        old_job = old.get_model("jobs", "Job")
        rows = {
            status: old_job.objects.create(
                tenant_id=alpha_staff.tenant.id,
                job_type="test.probe",
                status=status,
                payload={},
                created_by_id=alpha_staff.user.id,
            ).job_id
            for status in ("PENDING", "PROCESSING", "DONE", "FAILED")
        }

        # when the outbox migration runs
        _migrate("0003_outbox")
    finally:
        _migrate_to_latest()

    # then PENDING rows wait for the relay, the others count as sent, finished ones as published
    marks = {
        status: (
            job_row(job_id).message_sent_at is not None,
            job_row(job_id).terminal_published_at is not None,
        )
        for status, job_id in rows.items()
    }
    assert marks == {
        "PENDING": (False, False),
        "PROCESSING": (True, False),
        "DONE": (True, True),
        "FAILED": (True, True),
    }
