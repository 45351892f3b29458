"""The outbox: a created job runs even when SQS was away or its process died after the commit
(PROTOCOL.md §5, docs/adr/0011-the-job-row-is-the-outbox.md).

Real PostgreSQL, Redis and moto's server over HTTP; SQS "down" is a closed port in front of the
project's own client (the ``sqs_down`` fixture), never a replaced dispatch function.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections, transaction

from domains.jobs import repository, uploads
from domains.jobs.dispatch import QueueKind
from domains.jobs.models import Job, JobResult
from realtime import store
from realtime.keys import Topic
from tests.conftest import Member
from tests.integration.workers.conftest import (
    Outage,
    ThreadWorker,
    client_for,
    create_job,
    job_row,
    job_status,
    queue_bodies,
    queue_counts,
    wait_for,
)
from tests.unit.students.workbooks import xlsx_bytes
from workers.relay import Relay

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/jobs/"
ROWS = [("김민준", "01012345678", None, "대치중", 2, "남", None)]


def relay_once(grace: float = 0) -> Any:
    return Relay(interval=1, batch=100, grace=grace).tick()


def committed_without_send(member: Member, job_type: str = "test.probe") -> Job:
    """What a process that died right after the commit leaves: the row, and nothing sent."""
    with transaction.atomic():
        return repository.job_insert(
            member.tenant.id,
            job_type=job_type,
            payload={},
            created_by_id=member.user.id,
            idempotency_key="",
        )


def test_a_job_created_while_sqs_is_unreachable_is_accepted_and_runs_once_the_relay_sends_it(
    alpha_staff: Member, sqs_down: Outage, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given SQS does not answer
    client = client_for(alpha_staff)

    # when a job is posted, and posted again with the same Idempotency-Key
    first = client.post(
        URL,
        {"job_type": "test.probe", "payload": {}},
        format="json",
        headers={"Idempotency-Key": "k1"},
    )
    again = client.post(
        URL,
        {"job_type": "test.probe", "payload": {}},
        format="json",
        headers={"Idempotency-Key": "k1"},
    )

    # then it is accepted as PENDING, once, with its message recorded as not sent
    assert first.status_code == 202
    assert first.json()["status"] == "PENDING"
    assert again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    job = Job.objects.get()
    assert (job.status, job.message_sent_at, job.idempotency_key) == ("PENDING", None, "k1")
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    assert snap.status == "PENDING"

    # when SQS answers again and the relay passes
    sqs_down.end()
    assert queue_counts() == (0, 0)
    tick = relay_once()

    # then the message went out once, is recorded, and a worker runs the job
    assert tick.sent == 1
    assert job_row(job.job_id).message_sent_at is not None
    assert queue_bodies() == [{"job_id": str(job.job_id), "tenant_id": alpha_staff.tenant.id}]
    assert relay_once().sent == 0
    start_worker()
    wait_for(lambda: job_status(job.job_id) == "DONE")
    assert JobResult.objects.filter(job__job_id=job.job_id).count() == 1


def test_a_relay_pass_while_sqs_is_still_down_sends_nothing_and_loses_nothing(
    alpha_staff: Member, sqs_down: Outage
) -> None:
    # given a job committed while SQS is down
    job = create_job(alpha_staff, "test.probe")

    # when the relay passes before SQS is back
    tick = relay_once()

    # then nothing was sent, the queue failure is reported, and the job still waits for it
    assert (tick.sent, tick.queue_failed) == (0, True)
    assert job_row(job.job_id).message_sent_at is None
    sqs_down.end()
    assert relay_once().sent == 1


def test_a_job_whose_process_died_between_commit_and_send_is_sent_by_the_relay(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given a committed PENDING row whose process died before the send
    job = committed_without_send(alpha_staff)
    assert queue_counts() == (0, 0)

    # when the relay passes within the grace period, then after it
    early = relay_once(grace=3600)
    late = relay_once()

    # then the row is left to its own process first, then sent, and the job runs
    assert early.sent == 0
    assert late.sent == 1
    start_worker()
    wait_for(lambda: job_status(job.job_id) == "DONE")
    assert job_row(job.job_id).message_sent_at is not None


def test_a_message_relayed_twice_runs_the_job_once(
    alpha_staff: Member, start_worker: Callable[..., ThreadWorker]
) -> None:
    # given a job whose message went out but whose record of it was lost
    job = create_job(alpha_staff, "test.probe")
    assert job_row(job.job_id).message_sent_at is not None
    Job.objects.filter(job_id=job.job_id).update(message_sent_at=None)

    # when the relay sends it again and a worker takes both messages
    assert relay_once().sent == 1
    assert queue_counts() == (2, 0)
    holder = start_worker()

    # then the job ran once: one result, one attempt, the second message dropped as a duplicate
    wait_for(lambda: job_status(job.job_id) == "DONE")
    wait_for(lambda: holder.worker.stats.duplicates == 1, timeout=20)
    row = job_row(job.job_id)
    assert row.attempt == 1
    assert JobResult.objects.filter(job__job_id=job.job_id).count() == 1
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    assert snap.status == "DONE"


def test_a_row_another_relay_holds_is_skipped_not_sent_twice(alpha_staff: Member) -> None:
    # given another relay (another connection) holding the row's lock
    job = committed_without_send(alpha_staff)
    locked, release = threading.Event(), threading.Event()

    def other_relay() -> None:
        try:
            with transaction.atomic():
                assert repository.jobs_unsent_lock(limit=10, older_than=0)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_relay)
    thread.start()
    assert locked.wait(10)

    # when this relay passes while the lock is held, and again after
    during = relay_once()
    release.set()
    thread.join(10)
    after = relay_once()

    # then it skipped the held row instead of waiting or sending it, then sent it once
    assert during.sent == 0
    assert after.sent == 1
    assert queue_counts() == (1, 0)
    assert job_row(job.job_id).message_sent_at is not None


def test_the_relay_sends_each_tenants_job_with_its_own_tenant(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given a dead process's job in each tenant
    alpha_job = committed_without_send(alpha_staff)
    beta_job = committed_without_send(beta_staff)

    # when the relay passes
    assert relay_once().sent == 2

    # then each message names its job's own tenant
    bodies = sorted(queue_bodies(), key=lambda body: body["tenant_id"])
    assert bodies == sorted(
        [
            {"job_id": str(alpha_job.job_id), "tenant_id": alpha_staff.tenant.id},
            {"job_id": str(beta_job.job_id), "tenant_id": beta_staff.tenant.id},
        ],
        key=lambda body: body["tenant_id"],
    )


def test_a_job_of_a_type_nobody_knows_is_failed_by_the_relay_not_retried_forever(
    alpha_staff: Member,
) -> None:
    # given an unsent job of a type this deployment no longer has
    job = committed_without_send(alpha_staff, job_type="retired.type")

    # when the relay passes
    tick = relay_once()

    # then the job is FAILED in the record and in Redis, and nothing was queued
    assert tick.sent == 0
    row = job_row(job.job_id)
    assert row.status == "FAILED"
    assert row.error
    assert queue_counts() == (0, 0)
    snap = store.snapshot(alpha_staff.tenant.id, Topic.job(job.job_id))
    assert snap is not None
    assert snap.status == "FAILED"
    assert row.terminal_published_at is not None


# --- uploads and idempotency --------------------------------------------------------------------
def post_import(member: Member, key: str = "") -> Any:
    form = {
        "job_type": "excel_import",
        "file": SimpleUploadedFile("students.xlsx", xlsx_bytes(ROWS)),
        "initial_password": "first-login-2025",
    }
    headers = {"Idempotency-Key": key} if key else {}
    return client_for(member).post(URL, form, format="multipart", headers=headers)


def test_an_uploaded_file_is_kept_while_its_job_waits_for_the_queue(
    alpha_staff: Member, sqs_down: Outage
) -> None:
    # given SQS down and the uploads bucket in place
    uploads.imports_bucket_ensure()

    # when an Excel import is posted
    response = post_import(alpha_staff)

    # then the job is accepted and the file its row references is still stored
    assert response.status_code == 202
    job = job_row(response.json()["job_id"])
    key = job.payload["object_key"]
    assert uploads.upload_get(key)
    assert job.message_sent_at is None


def test_a_replay_after_a_failed_creation_creates_a_job_that_runs(
    alpha_staff: Member, settings: Any
) -> None:
    # given the upload cannot be stored (its bucket does not exist)
    uploads.imports_bucket_ensure()
    real_bucket = settings.EXCEL_IMPORT_BUCKET
    settings.EXCEL_IMPORT_BUCKET = f"missing-{uuid.uuid4().hex[:8]}"

    # when an import is posted with a key, fails, and is retried with the key once storage works
    failed = post_import(alpha_staff, key="import-1")
    settings.EXCEL_IMPORT_BUCKET = real_bucket
    retried = post_import(alpha_staff, key="import-1")

    # then the failed creation left no job to replay, and the retry made a new one and queued it
    assert failed.status_code == 503
    assert failed.json()["code"] == "unavailable"
    assert retried.status_code == 202
    job = Job.objects.get()
    assert str(job.job_id) == retried.json()["job_id"]
    assert job.message_sent_at is not None
    bodies = queue_bodies(QueueKind.AI)
    assert [(body["job_id"], body["tenant_id"]) for body in bodies] == [
        (str(job.job_id), alpha_staff.tenant.id)
    ]
